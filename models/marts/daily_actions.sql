{#- The operations worklist (PII: names, phones, emails): one row per loan that needs
    action on the business date, in working order. Lives in schema `restricted` and is
    published only to restricted outputs, never to BI tables.
    priority = rule order (the rulebook's order), then balance descending, then loan_id. -#}
{{ config(
    schema='restricted',
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    on_schema_change='fail',
    contract={'enforced': true},
    **incremental_by_date_config()
) }}

with assignments as (
    select *
    from {{ ref('segment_assignments') }}
    where {{ rulebook_in_run_range('as_of_date') }}
        and channel <> {{ rulebook_string_literal(var('no_action_channel')) }}
),

rules as (
    select rule_id, rule_order
    from {{ ref('int_rulebook_rules') }}
),

customers as (
    select as_of_date, customer_id, full_name, phone, email
    from {{ ref('stg_customers') }}
    where {{ rulebook_in_run_range('as_of_date') }}
),

ranked as (
    select
        assignments.*,
        customers.full_name,
        customers.phone,
        customers.email,
        row_number() over (
            partition by assignments.as_of_date
            order by rules.rule_order, assignments.balance_pen desc, assignments.loan_id
        ) as priority
    from assignments
    inner join rules
        on rules.rule_id = assignments.rule_id
    left join customers
        on customers.as_of_date = assignments.as_of_date
        and customers.customer_id = assignments.customer_id
)

select
    cast(as_of_date as date) as as_of_date,
    cast(priority as integer) as priority,
    cast(loan_id as {{ dbt.type_string() }}) as loan_id,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(full_name as {{ dbt.type_string() }}) as full_name,
    cast(phone as {{ dbt.type_string() }}) as phone,
    cast(email as {{ dbt.type_string() }}) as email,
    cast(department_code as {{ dbt.type_string() }}) as department_code,
    cast(segment_code as {{ dbt.type_string() }}) as segment_code,
    cast(strategy_code as {{ dbt.type_string() }}) as strategy_code,
    cast(channel as {{ dbt.type_string() }}) as channel,
    cast(offer as {{ dbt.type_string() }}) as offer,
    cast(assignee as {{ dbt.type_string() }}) as assignee,
    cast(next_contact_date as date) as next_contact_date,
    cast({{ rulebook_string_literal(var('contact_window_start')) }} as {{ dbt.type_string() }}) as contact_window_start,
    cast({{ rulebook_string_literal(var('contact_window_end')) }} as {{ dbt.type_string() }}) as contact_window_end,
    cast(balance_pen as decimal(18, 2)) as balance_pen,
    cast(dpd as integer) as dpd
from ranked
