{#- Each loan snapshot of the run with what depends only on its own date (contract
    section 2): balance in PEN at D's rate, the customer's department and digital consent
    from D's customers, the dpd bucket and the loan's own SBS category by days past due for
    its credit-type group, raised to the minimum category of its accounting status (castigado:
    always PER). All thresholds come from seeds. -#}
{{ config(materialized='table') }}
{%- set start_date = var('start_date') -%}
{%- set end_date = var('end_date') -%}

with loans as (
    select
        as_of_date,
        loan_id,
        customer_id,
        credit_type,
        product_code,
        currency,
        outstanding_principal,
        days_past_due as dpd,
        accounting_status,
        guarantee_type
    from {{ ref('stg_loans') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

fx_rates as (
    select
        as_of_date,
        currency,
        rate_to_pen
    from {{ ref('stg_fx_rates') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

customers as (
    select
        as_of_date,
        customer_id,
        department_code,
        digital_contact_consent
    from {{ ref('stg_customers') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

credit_type_groups as (
    select credit_type, credit_type_group
    from {{ ref('credit_type_groups') }}
),

category_thresholds as (
    select credit_type_group, sbs_category, min_dpd
    from {{ ref('sbs_category_thresholds') }}
),

accounting_statuses as (
    select accounting_status, min_sbs_category
    from {{ ref('accounting_statuses') }}
),

dpd_buckets as (
    select dpd_bucket, min_dpd
    from {{ ref('dpd_buckets') }}
),

sbs_categories as (
    select sbs_category, risk_order
    from {{ ref('sbs_categories') }}
),

-- Seeds hold lower bounds only: each row applies up to the next row's lower bound - 1.
category_ranges as (
    select
        credit_type_group,
        sbs_category,
        min_dpd,
        lead(min_dpd) over (partition by credit_type_group order by min_dpd) as next_min_dpd
    from category_thresholds
),

bucket_ranges as (
    select
        dpd_bucket,
        min_dpd,
        lead(min_dpd) over (order by min_dpd) as next_min_dpd
    from dpd_buckets
),

converted as (
    select
        loans.*,
        {{ round_money(money_times_rate(
            'loans.outstanding_principal',
            "case when loans.currency = '" ~ var('base_currency') ~ "' then 1 else fx_rates.rate_to_pen end"
        )) }} as balance_pen
    from loans
    left join fx_rates
        on fx_rates.as_of_date = loans.as_of_date
        and fx_rates.currency = loans.currency
),

categorised as (
    select
        converted.*,
        bucket_ranges.dpd_bucket,
        by_days.risk_order as days_risk_order,
        status_minimum.risk_order as status_risk_order
    from converted
    left join bucket_ranges
        on converted.dpd >= bucket_ranges.min_dpd
        and (bucket_ranges.next_min_dpd is null or converted.dpd < bucket_ranges.next_min_dpd)
    left join credit_type_groups
        on credit_type_groups.credit_type = converted.credit_type
    left join category_ranges
        on category_ranges.credit_type_group = credit_type_groups.credit_type_group
        and converted.dpd >= category_ranges.min_dpd
        and (category_ranges.next_min_dpd is null or converted.dpd < category_ranges.next_min_dpd)
    left join sbs_categories as by_days
        on by_days.sbs_category = category_ranges.sbs_category
    left join accounting_statuses
        on accounting_statuses.accounting_status = converted.accounting_status
    left join sbs_categories as status_minimum
        on status_minimum.sbs_category = accounting_statuses.min_sbs_category
),

-- The own category is the riskier of the category by days and the status's minimum
-- (castigado: PER).
own_category as (
    select
        categorised.*,
        case
            when categorised.status_risk_order > categorised.days_risk_order then categorised.status_risk_order
            else categorised.days_risk_order
        end as sbs_risk_order
    from categorised
)

select
    own_category.as_of_date,
    own_category.loan_id,
    own_category.customer_id,
    own_category.credit_type,
    own_category.product_code,
    own_category.currency,
    own_category.accounting_status,
    own_category.guarantee_type,
    customers.department_code,
    customers.digital_contact_consent,
    own_category.balance_pen,
    own_category.dpd,
    own_category.dpd_bucket,
    sbs_categories.sbs_category,
    own_category.sbs_risk_order
from own_category
left join customers
    on customers.as_of_date = own_category.as_of_date
    and customers.customer_id = own_category.customer_id
left join sbs_categories
    on sbs_categories.risk_order = own_category.sbs_risk_order
