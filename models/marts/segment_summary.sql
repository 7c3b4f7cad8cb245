{#- Per business date and segment: loans, customers, balance, provision and share of the
    date's portfolio balance. Built from segment_assignments for the run's dates. -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    on_schema_change='fail',
    contract={'enforced': true},
    **incremental_by_date_config()
) }}

with assignments as (
    select as_of_date, loan_id, customer_id, segment_code, strategy_code, balance_pen, provision_pen
    from {{ ref('segment_assignments') }}
    where {{ rulebook_in_run_range('as_of_date') }}
),

portfolio as (
    select as_of_date, sum(balance_pen) as portfolio_balance_pen
    from assignments
    group by as_of_date
),

segments as (
    select
        as_of_date,
        segment_code,
        strategy_code,
        count(*) as loans,
        count(distinct customer_id) as customers,
        sum(balance_pen) as balance_pen,
        sum(provision_pen) as provision_pen
    from assignments
    group by as_of_date, segment_code, strategy_code
)

select
    cast(segments.as_of_date as date) as as_of_date,
    cast(segments.segment_code as {{ dbt.type_string() }}) as segment_code,
    cast(segments.strategy_code as {{ dbt.type_string() }}) as strategy_code,
    cast(segments.loans as integer) as loans,
    cast(segments.customers as integer) as customers,
    cast(segments.balance_pen as decimal(18, 2)) as balance_pen,
    cast(segments.provision_pen as decimal(18, 2)) as provision_pen,
    cast(
        case
            when portfolio.portfolio_balance_pen = 0 then null
            else {{ round_share('segments.balance_pen', 'portfolio.portfolio_balance_pen') }}
        end as decimal(9, 6)
    ) as balance_share
from segments
inner join portfolio
    on portfolio.as_of_date = segments.as_of_date
