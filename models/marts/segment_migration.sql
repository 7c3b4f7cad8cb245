{#- Per business date: how many loans (and how much balance) moved from each segment on the
    previous processed date to each segment today.
    - previous processed date = the latest earlier as_of_date in segment_assignments (business
      dates need not be contiguous); a bulk run over a range sees its own earlier dates there,
      so a range gives the same rows as running its dates one by one;
    - from_segment 'NUEVO': the loan was not in the portfolio on the previous date (every loan
      on the first processed date);
    - to_segment 'SALIDA': the loan left the portfolio; balance_pen is its previous balance.
      Other rows carry today's balance. -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    on_schema_change='fail',
    contract={'enforced': true},
    **incremental_by_date_config()
) }}

{#- processed_dates, date_pairs, run_dates, today, yesterday: macros/run_dates.sql -#}
with {{ day_over_day_ctes(ref('segment_assignments'), ['segment_code', 'balance_pen']) }},

moves as (
    select
        coalesce(today.as_of_date, yesterday.as_of_date) as as_of_date,
        coalesce(yesterday.segment_code, 'NUEVO') as from_segment,
        coalesce(today.segment_code, 'SALIDA') as to_segment,
        coalesce(today.balance_pen, yesterday.balance_pen) as balance_pen
    from today
    full outer join yesterday
        on yesterday.as_of_date = today.as_of_date
        and yesterday.loan_id = today.loan_id
)

select
    cast(as_of_date as date) as as_of_date,
    cast(from_segment as {{ dbt.type_string() }}) as from_segment,
    cast(to_segment as {{ dbt.type_string() }}) as to_segment,
    cast(count(*) as integer) as loans,
    cast(sum(balance_pen) as decimal(18, 2)) as balance_pen
from moves
group by as_of_date, from_segment, to_segment
