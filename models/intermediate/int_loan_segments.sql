{#- First matching rule per loan and business date of the run (contract section 3).
    The CASE, the reason and the rule list come from the compiled rulebook
    (macros/generated/rulebook.sql); this model only wires them to the features. -#}
{{ rulebook_require_compiled() }}
{{ config(materialized='view') }}

{%- set feature_columns = [
    'customer_id', 'credit_type', 'product_code', 'currency', 'accounting_status', 'guarantee_type',
    'department_code', 'digital_contact_consent', 'balance_pen', 'dpd', 'dpd_bucket', 'max_dpd_12m',
    'delinquency_episodes_12m', 'paid_90d_pen', 'days_since_last_payment', 'sbs_category',
    'sbs_category_aligned', 'provision_rate', 'provision_pen', 'ifrs9_stage'] -%}

with features as (
    select
        as_of_date,
        loan_id,
        {{ feature_columns | join(',\n        ') }}
    from {{ ref('int_loan_features') }}
    where {{ rulebook_in_run_range('as_of_date') }}
),

rules as (
    {{ rulebook_rules() }}
),

matched as (
    select
        features.*,
        {{ rulebook_rule_id() | indent(8) }} as rule_id
    from features
),

explained as (
    select
        matched.*,
        {{ rulebook_reason('rule_id') | indent(8) }} as reason
    from matched
)

select
    explained.as_of_date,
    explained.loan_id,
    {%- for column in feature_columns %}
    explained.{{ column }},
    {%- endfor %}
    explained.rule_id,
    rules.rule_order,
    rules.segment_code,
    rules.segment_name,
    rules.strategy_code,
    {{ rulebook_version() }} as rulebook_version,
    explained.reason
from explained
inner join rules
    on rules.rule_id = explained.rule_id
