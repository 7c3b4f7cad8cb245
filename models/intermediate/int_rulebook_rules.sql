{#- The compiled rulebook as a table: one row per rule, in the order they are tried.
    Source: dbt_project/rulebook.yml, compiled by orchestration/transform/rulebook.py. -#}
{{ rulebook_require_compiled() }}
{{ config(materialized='table') }}

with rules as (
    {{ rulebook_rules() }}
)

select
    cast(rule_id as {{ dbt.type_string() }}) as rule_id,
    cast(rule_order as integer) as rule_order,
    cast(segment_code as {{ dbt.type_string() }}) as segment_code,
    cast(segment_name as {{ dbt.type_string() }}) as segment_name,
    cast(strategy_code as {{ dbt.type_string() }}) as strategy_code,
    cast(rule_description as {{ dbt.type_string() }}) as rule_description,
    cast(rule_condition as {{ dbt.type_string() }}) as rule_condition,
    cast({{ rulebook_version() }} as {{ dbt.type_string() }}) as rulebook_version
from rules
