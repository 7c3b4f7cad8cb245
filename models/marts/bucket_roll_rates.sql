{#- Per business date: loans (and balance) moving from each days-past-due bucket on the previous
    processed date to each bucket today. This is the daily increment behind the report's roll
    rates: computed once when the date is transformed (one join of two dates), so the report
    reads a few dozen small rows per date instead of joining millions of loan rows at render
    time.
    - previous processed date = the latest earlier as_of_date in segment_assignments (same rule
      as segment_migration; a bulk run over a range sees its own earlier dates there);
    - from_bucket 'NUEVO': the loan was not in the portfolio on the previous date;
    - to_bucket 'SALIDA': the loan left the portfolio (paid off, sold, removed);
    - previous_balance_pen: the loans' balance on the previous date (0 for NUEVO);
      balance_pen: their balance on as_of_date (0 for SALIDA);
    - from/to_bucket_min_dpd: the bucket's lowest dpd (seed dpd_buckets), so readers order
      buckets and tell "worse" from "better" without repeating the thresholds. -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    on_schema_change='fail',
    contract={'enforced': true},
    **incremental_by_date_config()
) }}

with {{ day_over_day_ctes(ref('segment_assignments'), ['dpd_bucket', 'balance_pen']) }},

moves as (
    select
        coalesce(today.as_of_date, yesterday.as_of_date) as as_of_date,
        coalesce(today.previous_date, yesterday.previous_date) as previous_date,
        coalesce(yesterday.dpd_bucket, 'NUEVO') as from_bucket,
        coalesce(today.dpd_bucket, 'SALIDA') as to_bucket,
        coalesce(yesterday.balance_pen, 0) as previous_balance_pen,
        coalesce(today.balance_pen, 0) as balance_pen
    from today
    full outer join yesterday
        on yesterday.as_of_date = today.as_of_date
        and yesterday.loan_id = today.loan_id
),

flows as (
    select
        as_of_date,
        previous_date,
        from_bucket,
        to_bucket,
        count(*) as loans,
        sum(previous_balance_pen) as previous_balance_pen,
        sum(balance_pen) as balance_pen
    from moves
    group by as_of_date, previous_date, from_bucket, to_bucket
)

select
    cast(flows.as_of_date as date) as as_of_date,
    cast(flows.previous_date as date) as previous_date,
    cast(flows.from_bucket as {{ dbt.type_string() }}) as from_bucket,
    cast(flows.to_bucket as {{ dbt.type_string() }}) as to_bucket,
    cast(from_buckets.min_dpd as integer) as from_bucket_min_dpd,
    cast(to_buckets.min_dpd as integer) as to_bucket_min_dpd,
    cast(flows.loans as integer) as loans,
    cast(flows.previous_balance_pen as decimal(18, 2)) as previous_balance_pen,
    cast(flows.balance_pen as decimal(18, 2)) as balance_pen
from flows
left join {{ ref('dpd_buckets') }} as from_buckets
    on from_buckets.dpd_bucket = flows.from_bucket
left join {{ ref('dpd_buckets') }} as to_buckets
    on to_buckets.dpd_bucket = flows.to_bucket
