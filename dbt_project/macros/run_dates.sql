{#- Date helpers shared by the feature models. Models read the run's dates with
    var('start_date') / var('end_date') themselves (so unit tests can override them) and pass
    them here. -#}

{#- An ISO date (a dbt var) as a SQL DATE literal. A literal lets the warehouse skip storage
    blocks of other dates (zone maps on DuckDB, partition pruning on Spark). -#}
{% macro date_literal(iso_date) -%}
    cast('{{ iso_date }}' as date)
{%- endmacro %}

{#- DATE expression plus n days (n may be negative), as a DATE. -#}
{% macro add_days(date_expression, days) -%}
    cast({{ dbt.dateadd('day', days, date_expression) }} as date)
{%- endmacro %}

{#- Days since 1970-01-01: an integer that window frames can use as a RANGE offset
    (`range between 364 preceding and current row` = the calendar days D-364 ..= D). -#}
{% macro day_number(date_expression) -%}
    {{ dbt.datediff("cast('1970-01-01' as date)", date_expression, 'day') }}
{%- endmacro %}

{#- Pre-hook of the incremental history models: remove every row of the run's dates before
    the new rows go in, so a date whose raw rows vanished does not keep stale rows (the
    delete+insert on unique_key only replaces dates that have new rows). -#}
{% macro delete_run_dates(date_column='as_of_date') -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ date_column }} between {{ date_literal(var('start_date')) }} and {{ date_literal(var('end_date')) }}
    {%- endif -%}
{%- endmacro %}

{#- last_value(expression) ignoring nulls, for a window frame that ends before the current
    row: "the value on the latest earlier row that has one". -#}
{% macro last_non_null(expression) -%}
    {{ return(adapter.dispatch('last_non_null', 'cartera')(expression)) }}
{%- endmacro %}

{% macro default__last_non_null(expression) -%}
    last_value({{ expression }}) ignore nulls
{%- endmacro %}

{% macro duckdb__last_non_null(expression) -%}
    last_value({{ expression }} ignore nulls)
{%- endmacro %}

{% macro spark__last_non_null(expression) -%}
    last_value({{ expression }}, true)
{%- endmacro %}
