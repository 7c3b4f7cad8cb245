{#- Loans that left the portfolio: a loan in the snapshot of a processed date and missing
    from the next processed date's snapshot gets one row, dated that next date, with
    last_as_of_date = its latest snapshot. When such a loan comes back, possibly months
    later, int_loan_snapshot_history finds its previous snapshot here instead of scanning
    all history. Works the same for one date or a range: each run date is compared with the
    processed date before it (for the first one, the previous run's last date). -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    **incremental_by_date_config()
) }}
{%- set start_date = var('start_date') -%}
{%- set end_date = var('end_date') -%}

with run_dates as (
    select
        as_of_date,
        previous_as_of_date
    from {{ ref('int_business_dates') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
        and previous_as_of_date is not null
),

run_loans as (
    select
        as_of_date,
        loan_id
    from {{ ref('stg_loans') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

-- The snapshot of the processed date before each run date. Joined directly (not through a
-- shared CTE) so the warehouse reads only those dates of the raw table.
previous_snapshots as (
    select
        run_dates.as_of_date,
        loans.loan_id,
        loans.as_of_date as last_as_of_date
    from run_dates
    inner join {{ ref('stg_loans') }} as loans
        on loans.as_of_date = run_dates.previous_as_of_date
)

select
    previous_snapshots.as_of_date,
    previous_snapshots.loan_id,
    previous_snapshots.last_as_of_date
from previous_snapshots
left join run_loans
    on run_loans.as_of_date = previous_snapshots.as_of_date
    and run_loans.loan_id = previous_snapshots.loan_id
where run_loans.loan_id is null
