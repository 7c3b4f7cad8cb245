{#- One row per loan snapshot (loan and processed business date), computed once when its
    date is processed:
    - previous_as_of_date / previous_dpd: the loan's latest earlier snapshot, however far
      back and across gaps (null for its first snapshot);
    - is_episode_start: dpd > 0 and the previous snapshot has dpd = 0 or does not exist;
    - last_payment_date: the latest payment date <= as_of_date of a row that is not a
      reversal (a payment reversed later still counts), however far back.
    One window over each loan's run snapshots and payments gives these values, starting from
    the loan's state before the run: this table's row on the previous processed date or, for
    a loan missing there, its row on the date before its latest departure
    (int_loan_departures). A day therefore reads one earlier snapshot, not all history, and
    a range gives the same rows as its dates one by one. -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    **incremental_by_date_config()
) }}
{%- set start_date = var('start_date') -%}
{%- set end_date = var('end_date') -%}

with run_loans as (
    select
        as_of_date,
        loan_id,
        days_past_due as dpd
    from {{ ref('stg_loans') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

previous_business_date as (
    select max(as_of_date) as as_of_date
    from {{ ref('int_business_dates') }}
    where as_of_date < {{ date_literal(start_date) }}
),

earlier_departures as (
    select
        loan_id,
        last_as_of_date
    from {{ ref('int_loan_departures') }}
    where as_of_date < {{ date_literal(start_date) }}
),

-- This table's rows on the previous processed date (joined directly so only that date is read).
state_on_previous_date as (
    {%- if is_incremental() %}
    select
        history.loan_id,
        history.as_of_date,
        history.dpd,
        history.last_payment_date
    from {{ this }} as history
    inner join previous_business_date
        on history.as_of_date = previous_business_date.as_of_date
    {%- else %}
    select
        loan_id,
        as_of_date,
        dpd,
        cast(null as date) as last_payment_date
    from run_loans
    where 1 = 0
    {%- endif %}
),

-- Non-reversal payments after the previous processed date, up to the run's last date.
payments_since_previous_date as (
    select
        payments.loan_id,
        payments.payment_date
    from {{ ref('int_payment_history') }} as payments
    cross join previous_business_date
    where payments.as_of_date <= {{ date_literal(end_date) }}
        and payments.as_of_date > coalesce(previous_business_date.as_of_date, {{ add_days(date_literal(start_date), -1) }})
        and not payments.is_reversal
),

run_loan_ids as (
    select distinct loan_id
    from run_loans
),

-- Run loans missing from the previous processed date's snapshot that were seen before:
-- their latest snapshot is the one before their latest departure.
returning_loans as (
    select
        earlier_departures.loan_id,
        max(earlier_departures.last_as_of_date) as last_as_of_date
    from earlier_departures
    inner join run_loan_ids
        on run_loan_ids.loan_id = earlier_departures.loan_id
    left join state_on_previous_date
        on state_on_previous_date.loan_id = earlier_departures.loan_id
    where state_on_previous_date.loan_id is null
    group by earlier_departures.loan_id
),

state_before_gap as (
    {%- if is_incremental() %}
    select
        history.loan_id,
        history.as_of_date,
        history.dpd,
        history.last_payment_date
    from {{ this }} as history
    inner join returning_loans
        on history.loan_id = returning_loans.loan_id
        and history.as_of_date = returning_loans.last_as_of_date
    {%- else %}
    select
        loan_id,
        as_of_date,
        dpd,
        cast(null as date) as last_payment_date
    from run_loans
    where 1 = 0
    {%- endif %}
),

-- Non-reversal payments of returning loans while they were away (empty on most days).
payments_during_gaps as (
    select
        payments.loan_id,
        payments.payment_date
    from {{ ref('int_payment_history') }} as payments
    inner join returning_loans
        on payments.loan_id = returning_loans.loan_id
    cross join previous_business_date
    where payments.as_of_date > returning_loans.last_as_of_date
        and payments.as_of_date <= previous_business_date.as_of_date
        and not payments.is_reversal
),

state_before_run as (
    select loan_id, as_of_date, dpd, last_payment_date
    from state_on_previous_date
    inner join run_loan_ids using (loan_id)
    union all
    select loan_id, as_of_date, dpd, last_payment_date
    from state_before_gap
),

-- Per loan, in date order: its state before the run, each payment, each run snapshot. On
-- one date payments sort before the snapshot (a payment dated D counts on D). One window
-- gives every run snapshot the latest earlier snapshot (date, dpd) and the latest
-- non-reversal payment date so far.
events as (
    select loan_id, as_of_date, 1 as is_snapshot, 0 as is_run_snapshot, dpd, last_payment_date as payment_date
    from state_before_run
    union all
    select loan_id, payment_date as as_of_date, 0 as is_snapshot, 0 as is_run_snapshot,
        cast(null as {{ dbt.type_int() }}) as dpd, payment_date
    from payments_since_previous_date
    union all
    select loan_id, payment_date as as_of_date, 0 as is_snapshot, 0 as is_run_snapshot,
        cast(null as {{ dbt.type_int() }}) as dpd, payment_date
    from payments_during_gaps
    union all
    select loan_id, as_of_date, 1 as is_snapshot, 1 as is_run_snapshot, dpd, cast(null as date) as payment_date
    from run_loans
),

ordered as (
    select
        loan_id,
        as_of_date,
        is_run_snapshot,
        dpd,
        max(case when is_snapshot = 1 then as_of_date end) over (
            partition by loan_id order by as_of_date, is_snapshot
            rows between unbounded preceding and 1 preceding
        ) as previous_as_of_date,
        {{ last_non_null('dpd') }} over (
            partition by loan_id order by as_of_date, is_snapshot
            rows between unbounded preceding and 1 preceding
        ) as previous_dpd,
        max(payment_date) over (
            partition by loan_id order by as_of_date, is_snapshot
            rows between unbounded preceding and current row
        ) as last_payment_date
    from events
)

select
    as_of_date,
    loan_id,
    dpd,
    previous_as_of_date,
    previous_dpd,
    case
        when dpd > 0 and coalesce(previous_dpd, 0) = 0 then true
        else false
    end as is_episode_start,
    last_payment_date
from ordered
where is_run_snapshot = 1
-- date order keeps each date's rows together on disk even when a range is written at once,
-- so later runs that read one date skip the rest
order by as_of_date
