{#- A SQL expression that fails the running query with `message_sql` (a SQL string
    expression). Only rows that reach it raise, so `case when <missing> then
    raise_error_in_query(...) end` stops a run exactly for the dates it processes. -#}
{% macro raise_error_in_query(message_sql) -%}
    {{ return(adapter.dispatch('raise_error_in_query', 'cartera')(message_sql)) }}
{%- endmacro %}

{% macro duckdb__raise_error_in_query(message_sql) -%}
    error({{ message_sql }})
{%- endmacro %}

{% macro spark__raise_error_in_query(message_sql) -%}
    raise_error({{ message_sql }})
{%- endmacro %}

{% macro default__raise_error_in_query(message_sql) -%}
    {{ exceptions.raise_compiler_error("raise_error_in_query has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}
