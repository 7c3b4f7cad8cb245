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
    {{ return(adapter.dispatch('delete_run_dates', 'cartera')(date_column)) }}
{%- endmacro %}

{#- DELETE of the run's dates (DuckDB, PostgreSQL ...; Spark: cross_adapter.sql drops partitions). -#}
{% macro default__delete_run_dates(date_column='as_of_date') -%}
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

{#- The CTEs of the day-over-day marts (segment_migration, bucket_roll_rates): each run date
    paired with the previous *processed* date (the latest earlier as_of_date in `relation`;
    business dates need not be contiguous, and a bulk run over a range sees its own earlier
    dates there), then `today` and `yesterday`: the loans' `columns` on the run date and on
    its previous date, both keyed by (as_of_date = the run date, loan_id).
    `relation` is read three times on purpose, each read narrowed on its own (no shared CTE,
    which a warehouse may materialize over all of history): its date column only, the run's
    dates (a literal range: zone maps / partition pruning) and the previous dates (a join on a
    handful of dates). The day's cost then follows the day, not the history. -#}
{% macro day_over_day_ctes(relation, columns) -%}
processed_dates as (
    select distinct as_of_date
    from {{ relation }}
    where as_of_date <= {{ date_literal(var('end_date')) }}
),

date_pairs as (
    select
        as_of_date,
        lag(as_of_date) over (order by as_of_date) as previous_date
    from processed_dates
),

run_dates as (
    select as_of_date, previous_date
    from date_pairs
    where as_of_date between {{ date_literal(var('start_date')) }} and {{ date_literal(var('end_date')) }}
),

{%- set in_run = 'between ' ~ date_literal(var('start_date')) ~ ' and ' ~ date_literal(var('end_date')) %}
{%- set reads = [('today', 'as_of_date', in_run),
                 ('yesterday', 'previous_date', '< ' ~ date_literal(var('end_date')))] %}
{%- for name, run_column, date_filter in reads %}

{{ name }} as (
    select
        run_dates.as_of_date,
        run_dates.previous_date,
        loan_rows.loan_id
        {%- for column in columns %},
        loan_rows.{{ column }}
        {%- endfor %}
    from {{ relation }} as loan_rows
    inner join run_dates
        on run_dates.{{ run_column }} = loan_rows.as_of_date
    where loan_rows.as_of_date {{ date_filter }}
){{ ',' if not loop.last }}
{%- endfor %}
{%- endmacro %}
