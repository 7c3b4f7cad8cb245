{#- Helpers of the segment, strategy and mart models (the rulebook's own macros are generated
    into macros/generated/rulebook.sql by orchestration/transform/rulebook.py).
    Everything adapter-specific is dispatched: default__ is portable SQL, duckdb__/spark__
    override only what differs. -#}


{#- ---- the run's business dates (dbt vars start_date / end_date) ----------------------- -#}

{% macro rulebook_run_date(name) -%}
    {%- set value = var(name) | string -%}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
        {{ exceptions.raise_compiler_error("dbt var " ~ name ~ " = '" ~ value ~ "': expected an ISO date YYYY-MM-DD") }}
    {%- endif -%}
    {{- return(modules.datetime.date.fromisoformat(value)) -}}
{%- endmacro %}

{% macro rulebook_date_literal(day) -%}
    cast('{{ day.isoformat() }}' as date)
{%- endmacro %}

{#- `column` lies within the run's business dates (inclusive). -#}
{% macro rulebook_in_run_range(column) -%}
    {{ column }} between {{ rulebook_date_literal(rulebook_run_date('start_date')) }}
        and {{ rulebook_date_literal(rulebook_run_date('end_date')) }}
{%- endmacro %}

{#- A configuration text (dbt var) as a SQL string literal. -#}
{% macro rulebook_string_literal(value) -%}
    '{{ (value | string).replace("'", "''") }}'
{%- endmacro %}

{#- A list var (e.g. digital_channels) as a SQL list of string literals: ('a', 'b'). -#}
{% macro rulebook_string_list(values) -%}
    ({%- for value in values -%}{{ rulebook_string_literal(value) }}{{ ", " if not loop.last }}{%- endfor -%})
{%- endmacro %}


{#- ---- values shown in reasons -------------------------------------------------------- -#}

{% macro rulebook_format_text(column) -%}
    cast({{ column }} as {{ dbt.type_string() }})
{%- endmacro %}

{% macro rulebook_format_integer(column) -%}
    cast({{ column }} as {{ dbt.type_string() }})
{%- endmacro %}

{% macro rulebook_format_boolean(column) -%}
    case when {{ column }} then 'sí' else 'no' end
{%- endmacro %}

{#- Money as 'S/ 12,300.00' (thousands separator, 2 decimals). -#}
{% macro rulebook_format_money(column) -%}
    {{ return(adapter.dispatch('rulebook_format_money')(column)) }}
{%- endmacro %}

{% macro default__rulebook_format_money(column) -%}
    {{ dbt.concat(["'S/ '", "to_char(" ~ column ~ ", 'FM999,999,999,999,990.00')"]) }}
{%- endmacro %}

{% macro duckdb__rulebook_format_money(column) -%}
    {{ dbt.concat(["'S/ '", "format('{:,.2f}', cast(" ~ column ~ " as double))"]) }}
{%- endmacro %}

{% macro spark__rulebook_format_money(column) -%}
    {{ dbt.concat(["'S/ '", "format_number(" ~ column ~ ", 2)"]) }}
{%- endmacro %}

{#- A fraction as a percentage with 2 decimals: 0.05 -> '5.00%'. -#}
{% macro rulebook_format_rate(column) -%}
    {{ return(adapter.dispatch('rulebook_format_rate')(column)) }}
{%- endmacro %}

{% macro default__rulebook_format_rate(column) -%}
    {{ dbt.concat(["cast(round(" ~ column ~ " * 100, 2) as " ~ dbt.type_string() ~ ")", "'%'"]) }}
{%- endmacro %}

{% macro duckdb__rulebook_format_rate(column) -%}
    {{ dbt.concat(["format('{:.2f}', cast(" ~ column ~ " as double) * 100)", "'%'"]) }}
{%- endmacro %}

{% macro spark__rulebook_format_rate(column) -%}
    {{ dbt.concat(["format_number(" ~ column ~ " * 100, 2)", "'%'"]) }}
{%- endmacro %}


{#- ---- generic data test (no dbt_utils: the package hub is unreachable; the others are in
    generic_tests.sql) ------------------------------------------------------------------ -#}

{#- Every row satisfies `expression` (rows where it is false or null fail). -#}
{% test rulebook_expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}


{#- ---- the compiled rulebook must exist ------------------------------------------------ -#}

{#- Models that use the generated rulebook macros call this first, so a dbt command run by
    hand before the rulebook was compiled fails with a message that says what to do. -#}
{% macro rulebook_require_compiled() -%}
    {%- if context.get('rulebook_rule_id') is none -%}
        {{ exceptions.raise_compiler_error(
            "dbt_project/macros/generated/rulebook.sql is missing: compile dbt_project/rulebook.yml first "
            ~ "(cartera prepare, or python -c 'from orchestration.transform.rulebook import compile_rulebook; "
            ~ "compile_rulebook()')") }}
    {%- endif -%}
{%- endmacro %}
