{#- Use the folder's schema name as is (staging, intermediate, marts, config) instead of
    dbt's default "<target_schema>_<custom>", so auditors read stable, short names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
