{#- One row per processed business date (a date with loans) and the processed date before it.
    Business dates are not contiguous (weekends, holidays, lenders that send weekly), so
    "the previous snapshot" is looked up through previous_as_of_date, never by D - 1. -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    **incremental_by_date_config()
) }}
{%- set start_date = var('start_date') -%}
{%- set end_date = var('end_date') -%}

with run_loans as (
    select as_of_date
    from {{ ref('stg_loans') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

earlier_dates as (
    {%- if is_incremental() %}
    select as_of_date
    from {{ this }}
    where as_of_date < {{ date_literal(start_date) }}
    {%- else %}
    select as_of_date
    from run_loans
    where 1 = 0
    {%- endif %}
),

run_dates as (
    select
        as_of_date,
        count(*) as loans
    from run_loans
    group by as_of_date
),

latest_earlier_date as (
    select max(as_of_date) as as_of_date
    from earlier_dates
),

dated as (
    select
        as_of_date,
        loans,
        lag(as_of_date) over (order by as_of_date) as previous_run_date
    from run_dates
)

select
    dated.as_of_date,
    coalesce(dated.previous_run_date, latest_earlier_date.as_of_date) as previous_as_of_date,
    cast(dated.loans as {{ dbt.type_int() }}) as loans
from dated
cross join latest_earlier_date
