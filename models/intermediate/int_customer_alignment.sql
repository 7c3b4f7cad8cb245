{#- Alineamiento interno (contract section 2), per customer and business date of the run:
    total_balance_pen = sum of balance_pen of the customer's loans;
    alignment_threshold_pen = max(min, min(share x total (unrounded), multiple x UIT of D's
    year)) with the vars alignment_min_threshold_pen (100), alignment_balance_share (0.01)
    and alignment_uit_multiple (3);
    worst_sbs_category = the riskiest own category among the customer's loans with
    balance_pen >= the threshold (null when none reaches it).
    A date whose year has no row in seed uit_by_year stops the run with an error naming the
    year (raised by the query itself, so only for dates that are processed). -#}
{{ config(materialized='table') }}

with loans as (
    select
        as_of_date,
        customer_id,
        balance_pen,
        sbs_risk_order
    from {{ ref('int_loan_categories') }}
),

uit_by_year as (
    select uit_year, uit_pen
    from {{ ref('uit_by_year') }}
),

sbs_categories as (
    select sbs_category, risk_order
    from {{ ref('sbs_categories') }}
),

totals as (
    select
        as_of_date,
        customer_id,
        count(*) as loans,
        sum(balance_pen) as total_balance_pen
    from loans
    group by as_of_date, customer_id
),

run_dates as (
    select distinct as_of_date
    from totals
),

uit_of_dates as (
    select
        run_dates.as_of_date,
        case
            when uit_by_year.uit_pen is null then {{ raise_error_in_query(dbt.concat([
                "'No UIT configured for year '",
                "cast(extract(year from run_dates.as_of_date) as " ~ dbt.type_string() ~ ")",
                "' (business date '",
                "cast(run_dates.as_of_date as " ~ dbt.type_string() ~ ")",
                "'): add the year and its UIT to dbt_project/seeds/uit_by_year.csv'",
            ])) }}
            else uit_by_year.uit_pen
        end as uit_pen
    from run_dates
    left join uit_by_year
        on uit_by_year.uit_year = extract(year from run_dates.as_of_date)
),

thresholds as (
    select
        totals.as_of_date,
        totals.customer_id,
        totals.loans,
        totals.total_balance_pen,
        uit_of_dates.uit_pen,
        greatest(
            cast({{ var('alignment_min_threshold_pen') }} as decimal(18, 2)),
            least(
                cast({{ var('alignment_balance_share') }} as decimal(9, 6)) * totals.total_balance_pen,
                cast({{ var('alignment_uit_multiple') }} as decimal(9, 4)) * uit_of_dates.uit_pen
            )
        ) as alignment_threshold_pen
    from totals
    inner join uit_of_dates
        on uit_of_dates.as_of_date = totals.as_of_date
),

worst as (
    select
        thresholds.as_of_date,
        thresholds.customer_id,
        max(loans.sbs_risk_order) as worst_risk_order
    from thresholds
    inner join loans
        on loans.as_of_date = thresholds.as_of_date
        and loans.customer_id = thresholds.customer_id
        and loans.balance_pen >= thresholds.alignment_threshold_pen
    group by thresholds.as_of_date, thresholds.customer_id
)

select
    thresholds.as_of_date,
    thresholds.customer_id,
    cast(thresholds.loans as {{ dbt.type_int() }}) as loans,
    cast(thresholds.total_balance_pen as decimal(18, 2)) as total_balance_pen,
    cast(thresholds.uit_pen as decimal(18, 2)) as uit_pen,
    cast(thresholds.alignment_threshold_pen as decimal(24, 8)) as alignment_threshold_pen,
    worst.worst_risk_order,
    sbs_categories.sbs_category as worst_sbs_category
from thresholds
left join worst
    on worst.as_of_date = thresholds.as_of_date
    and worst.customer_id = thresholds.customer_id
left join sbs_categories
    on sbs_categories.risk_order = worst.worst_risk_order
