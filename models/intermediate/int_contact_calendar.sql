{#- Next contact day for every calendar day of the run (Ley 29571 art. 62): the first day
    after it that is Monday to Friday and not a national holiday (seed pe_holidays).
    A date spine from the run's first date to lookahead days past its last one, built with
    dbt's cross-database macros (generate_series, dateadd, date_trunc). -#}
{{ config(materialized='view') }}

{%- set first_day = rulebook_run_date('start_date') -%}
{%- set last_day = rulebook_run_date('end_date') -%}
{%- set span_days = (last_day - first_day).days + (var('contact_calendar_lookahead_days') | int) + 1 -%}

with holidays as (
    select cast(holiday_date as date) as holiday_date
    from {{ ref('pe_holidays') }}
),

day_numbers as (
    -- generated_number = 1 .. span_days
    {{ dbt.generate_series(span_days) | indent(4) }}
),

days as (
    select
        cast({{ dbt.dateadd('day', 'generated_number - 1', rulebook_date_literal(first_day)) }} as date) as calendar_date,
        -- 0 = Monday ... 6 = Sunday; the run's first day is a {{ first_day.strftime('%A') }} ({{ first_day.weekday() }})
        mod(generated_number - 1 + {{ first_day.weekday() }}, 7) as weekday_index
    from day_numbers
),

holiday_years as (
    select distinct cast({{ dbt.date_trunc('year', 'holiday_date') }} as date) as holiday_year
    from holidays
),

flagged as (
    select
        days.calendar_date,
        (days.weekday_index < 5 and holidays.holiday_date is null) as is_contact_day
    from days
    left join holidays
        on holidays.holiday_date = days.calendar_date
),

with_next as (
    select
        calendar_date,
        is_contact_day,
        min(case when is_contact_day then calendar_date end) over (
            order by calendar_date rows between 1 following and unbounded following
        ) as next_contact_date
    from flagged
)

select
    with_next.calendar_date,
    with_next.is_contact_day,
    with_next.next_contact_date,
    -- false when the holiday seed lacks a year the answer depends on (data test: must be true)
    (with_next.next_contact_date is not null
        and this_year.holiday_year is not null
        and next_year.holiday_year is not null) as holiday_calendar_covered
from with_next
left join holiday_years as this_year
    on this_year.holiday_year = cast({{ dbt.date_trunc('year', 'with_next.calendar_date') }} as date)
left join holiday_years as next_year
    on next_year.holiday_year = cast({{ dbt.date_trunc('year', 'with_next.next_contact_date') }} as date)
where with_next.calendar_date <= {{ rulebook_date_literal(last_day) }}
