{#- One row per loan and business date: features, segment, reason and strategy.
    Re-running a date replaces that date's rows: the pre-hook deletes the run's dates, then
    delete+insert by as_of_date. customer_id stays in the warehouse; publish swaps it for
    customer_key in the BI copy. -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    on_schema_change='fail',
    contract={'enforced': true},
    **incremental_by_date_config()
) }}

with strategies as (
    select * from {{ ref('int_loan_strategies') }}
)

select
    cast(as_of_date as date) as as_of_date,
    cast(loan_id as {{ dbt.type_string() }}) as loan_id,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(credit_type as {{ dbt.type_string() }}) as credit_type,
    cast(product_code as {{ dbt.type_string() }}) as product_code,
    cast(currency as {{ dbt.type_string() }}) as currency,
    cast(department_code as {{ dbt.type_string() }}) as department_code,
    cast(digital_contact_consent as boolean) as digital_contact_consent,
    cast(accounting_status as {{ dbt.type_string() }}) as accounting_status,
    cast(guarantee_type as {{ dbt.type_string() }}) as guarantee_type,
    cast(balance_pen as decimal(18, 2)) as balance_pen,
    cast(dpd as integer) as dpd,
    cast(dpd_bucket as {{ dbt.type_string() }}) as dpd_bucket,
    cast(max_dpd_12m as integer) as max_dpd_12m,
    cast(delinquency_episodes_12m as integer) as delinquency_episodes_12m,
    cast(paid_90d_pen as decimal(18, 2)) as paid_90d_pen,
    cast(days_since_last_payment as integer) as days_since_last_payment,
    cast(sbs_category as {{ dbt.type_string() }}) as sbs_category,
    cast(sbs_category_aligned as {{ dbt.type_string() }}) as sbs_category_aligned,
    cast(provision_rate as decimal(9, 6)) as provision_rate,
    cast(provision_pen as decimal(18, 2)) as provision_pen,
    cast(ifrs9_stage as integer) as ifrs9_stage,
    cast(segment_code as {{ dbt.type_string() }}) as segment_code,
    cast(rule_id as {{ dbt.type_string() }}) as rule_id,
    cast(rulebook_version as {{ dbt.type_string() }}) as rulebook_version,
    cast(reason as {{ dbt.type_string() }}) as reason,
    cast(strategy_code as {{ dbt.type_string() }}) as strategy_code,
    cast(channel as {{ dbt.type_string() }}) as channel,
    cast(offer as {{ dbt.type_string() }}) as offer,
    cast(assignee as {{ dbt.type_string() }}) as assignee,
    cast(next_contact_date as date) as next_contact_date
from strategies
