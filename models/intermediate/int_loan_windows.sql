{#- Look-back windows of each loan snapshot of the run, by calendar date (contract section 2):
    - max_dpd_12m: max dpd over the loan's snapshots dated D-364 ..= D;
    - delinquency_episodes_12m: episode starts (int_loan_snapshot_history) dated D-364 ..= D;
    - paid_90d_pen: PEN payments dated D-89 ..= D, reversals negative, rounded once;
    - days_since_last_payment: D minus the latest non-reversal payment date (null if none).
    (The window lengths are the vars history_window_days / payments_window_days.)

    How: one window function with RANGE frames over day numbers, so every run date gets its
    own calendar window and a range computes exactly what its dates compute one by one.
    Only rows that can change a result enter it: the run's snapshots and payments, the
    delinquent snapshots (dpd > 0) of the 364 days before the run and the payments of the
    89 days before it. Those earlier rows are first collapsed: an earlier row dated t still
    counts for the run dates <= t + 364 (89), so it moves to the window start of the last
    run date it counts for, and rows of one loan at one position are pre-aggregated. On a
    daily run every earlier row of a loan lands on one position: one row per loan. -#}
{{ config(materialized='table') }}
{%- set start_date = var('start_date') -%}
{%- set end_date = var('end_date') -%}
{%- set history_preceding = var('history_window_days') - 1 -%}
{%- set payments_preceding = var('payments_window_days') - 1 -%}

with business_dates as (
    select as_of_date
    from {{ ref('int_business_dates') }}
    where as_of_date between {{ add_days(date_literal(start_date), -history_preceding) }}
        and {{ date_literal(end_date) }}
),

run_snapshots as (
    select
        as_of_date,
        loan_id,
        dpd,
        is_episode_start,
        last_payment_date
    from {{ ref('int_loan_snapshot_history') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

earlier_delinquent_snapshots as (
    select
        as_of_date,
        loan_id,
        dpd,
        is_episode_start
    from {{ ref('int_loan_snapshot_history') }}
    where as_of_date between {{ add_days(date_literal(start_date), -history_preceding) }}
        and {{ add_days(date_literal(start_date), -1) }}
        and dpd > 0
),

run_payments as (
    select
        as_of_date,
        loan_id,
        amount_pen
    from {{ ref('int_payment_history') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

earlier_payments as (
    select
        as_of_date,
        loan_id,
        amount_pen
    from {{ ref('int_payment_history') }}
    where as_of_date between {{ add_days(date_literal(start_date), -payments_preceding) }}
        and {{ add_days(date_literal(start_date), -1) }}
),

-- Dates of the earlier payments, read apart from the rows (a CTE used twice would be
-- materialised whole); a payment may be dated on a day that has no loan snapshot.
earlier_payment_dates as (
    select distinct
        as_of_date,
        {{ day_number('as_of_date') }} as day_number
    from {{ ref('int_payment_history') }}
    where as_of_date between {{ add_days(date_literal(start_date), -payments_preceding) }}
        and {{ add_days(date_literal(start_date), -1) }}
),

run_dates as (
    select {{ day_number('as_of_date') }} as day_number
    from business_dates
    where as_of_date >= {{ date_literal(start_date) }}
),

earlier_dates as (
    select
        as_of_date,
        {{ day_number('as_of_date') }} as day_number
    from business_dates
    where as_of_date < {{ date_literal(start_date) }}
),

-- For each earlier date: the window start of the last run date whose 12-month (90-day)
-- window still contains it. Dates that no run date's window contains get no position.
history_positions as (
    select
        earlier_dates.as_of_date,
        max(run_dates.day_number) - {{ history_preceding }} as window_position
    from earlier_dates
    inner join run_dates
        on run_dates.day_number <= earlier_dates.day_number + {{ history_preceding }}
    group by earlier_dates.as_of_date
),

payment_positions as (
    select
        earlier_payment_dates.as_of_date,
        max(run_dates.day_number) - {{ payments_preceding }} as window_position
    from earlier_payment_dates
    inner join run_dates
        on run_dates.day_number <= earlier_payment_dates.day_number + {{ payments_preceding }}
    group by earlier_payment_dates.as_of_date
),

collapsed_delinquency as (
    select
        earlier_delinquent_snapshots.loan_id,
        history_positions.window_position,
        max(earlier_delinquent_snapshots.dpd) as dpd,
        sum(case when earlier_delinquent_snapshots.is_episode_start then 1 else 0 end) as episode_starts
    from earlier_delinquent_snapshots
    inner join history_positions
        on history_positions.as_of_date = earlier_delinquent_snapshots.as_of_date
    group by
        earlier_delinquent_snapshots.loan_id,
        history_positions.window_position
),

collapsed_payments as (
    select
        earlier_payments.loan_id,
        payment_positions.window_position,
        sum(earlier_payments.amount_pen) as amount_pen
    from earlier_payments
    inner join payment_positions
        on payment_positions.as_of_date = earlier_payments.as_of_date
    group by
        earlier_payments.loan_id,
        payment_positions.window_position
),

events as (
    select
        loan_id,
        {{ day_number('as_of_date') }} as day_number,
        as_of_date,
        1 as is_run_snapshot,
        dpd,
        case when is_episode_start then 1 else 0 end as episode_starts,
        cast(0 as decimal(38, 8)) as amount_pen,
        last_payment_date
    from run_snapshots
    union all
    select
        loan_id,
        window_position as day_number,
        cast(null as date) as as_of_date,
        0 as is_run_snapshot,
        dpd,
        episode_starts,
        cast(0 as decimal(38, 8)) as amount_pen,
        cast(null as date) as last_payment_date
    from collapsed_delinquency
    union all
    select
        loan_id,
        window_position as day_number,
        cast(null as date) as as_of_date,
        0 as is_run_snapshot,
        cast(null as {{ dbt.type_int() }}) as dpd,
        0 as episode_starts,
        amount_pen,
        cast(null as date) as last_payment_date
    from collapsed_payments
    union all
    select
        loan_id,
        {{ day_number('as_of_date') }} as day_number,
        cast(null as date) as as_of_date,
        0 as is_run_snapshot,
        cast(null as {{ dbt.type_int() }}) as dpd,
        0 as episode_starts,
        amount_pen,
        cast(null as date) as last_payment_date
    from run_payments
),

windowed as (
    select
        as_of_date,
        loan_id,
        is_run_snapshot,
        last_payment_date,
        max(dpd) over (
            partition by loan_id order by day_number
            range between {{ history_preceding }} preceding and current row
        ) as max_dpd_12m,
        sum(episode_starts) over (
            partition by loan_id order by day_number
            range between {{ history_preceding }} preceding and current row
        ) as delinquency_episodes_12m,
        sum(amount_pen) over (
            partition by loan_id order by day_number
            range between {{ payments_preceding }} preceding and current row
        ) as paid_90d_pen
    from events
)

select
    as_of_date,
    loan_id,
    cast(max_dpd_12m as {{ dbt.type_int() }}) as max_dpd_12m,
    cast(delinquency_episodes_12m as {{ dbt.type_int() }}) as delinquency_episodes_12m,
    {{ round_money('coalesce(paid_90d_pen, 0)') }} as paid_90d_pen,
    cast({{ dbt.datediff('last_payment_date', 'as_of_date', 'day') }} as {{ dbt.type_int() }}) as days_since_last_payment
from windowed
where is_run_snapshot = 1
