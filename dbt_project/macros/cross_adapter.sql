{#- What differs between DuckDB and Spark SQL for cartera's models (docs/scale-out.md).
    The models call these macros; DuckDB compiles to exactly the SQL it ran before Spark
    support existed, Spark gets its own variant. Money math lives in money.sql. -#}


{#- ---- incremental models keyed by business date ------------------------------------- -#}

{#- config() of every incremental model that replaces whole business dates:
    DuckDB: delete+insert on as_of_date (plus the delete_run_dates pre-hook);
    Spark:  insert_overwrite of Parquet partitions as_of_date (the pre-hook drops the run's
            partitions first, so a date whose rows vanished does not keep stale ones). -#}
{% macro incremental_by_date_config() -%}
    {%- if target.type == 'spark' -%}
        {{- return({'incremental_strategy': 'insert_overwrite', 'partition_by': ['as_of_date'], 'file_format': 'parquet'}) -}}
    {%- else -%}
        {{- return({'incremental_strategy': 'delete+insert', 'unique_key': 'as_of_date'}) -}}
    {%- endif -%}
{%- endmacro %}

{#- Partitions (Hive-style `as_of_date=D`) of the run's dates, for the Spark pre-hook. -#}
{% macro spark__delete_run_dates(date_column='as_of_date') -%}
    {%- if is_incremental() -%}
        {%- set first = modules.datetime.date.fromisoformat(var('start_date') | string) -%}
        {%- set last = modules.datetime.date.fromisoformat(var('end_date') | string) -%}
        {%- set specs = [] -%}
        {%- for offset in range((last - first).days + 1) -%}
            {%- do specs.append("partition (" ~ date_column ~ " = '" ~ (first + modules.datetime.timedelta(days=offset)).isoformat() ~ "')") -%}
        {%- endfor -%}
        alter table {{ this }} drop if exists {{ specs | join(', ') }}
    {%- endif -%}
{%- endmacro %}


{#- ---- a share with 6 decimals (segment_summary.balance_share) ------------------------ -#}

{#- round(numerator / denominator, 6) for two DECIMAL sums. DuckDB divides DECIMALs as DOUBLE
    and rounds as std::round(x * 1e6) / 1e6; Spark divides DECIMALs exactly (to a scale it
    picks), which would round differently in rare ties. The Spark variant repeats DuckDB's
    IEEE double steps, so both give the same share to the last digit. -#}
{% macro round_share(numerator, denominator) -%}
    {{ return(adapter.dispatch('round_share', 'cartera')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__round_share(numerator, denominator) -%}
    round({{ numerator }} / {{ denominator }}, 6)
{%- endmacro %}

{% macro spark__round_share(numerator, denominator) -%}
    (round(cast({{ numerator }} as double) / cast({{ denominator }} as double) * 1000000, 0) / 1000000)
{%- endmacro %}


{#- ---- raw tables on Spark ----------------------------------------------------------- -#}

{#- Pre-hook of the staging views (dbt_project.yml). Spark: declare the raw Parquet hand-off
    (orchestration/transform/spark.py writes $CARTERA_SPARK_RAW_DIR/<table>/as_of_date=D/) as
    the partitioned table raw.<table> the view reads (stg_loans -> raw.loans) and pick up the
    partitions added since the last run. Other adapters: nothing (ingest writes raw.* into the
    warehouse itself). Renders to an empty string either way: the work is done by run_query
    while the hook renders, and dbt skips an empty hook. -#}
{% macro register_raw_table() -%}
    {{ return(adapter.dispatch('register_raw_table', 'cartera')()) }}
{%- endmacro %}

{% macro default__register_raw_table() -%}
{%- endmacro %}

{% macro spark__register_raw_table() -%}
    {%- set location = env_var('CARTERA_SPARK_RAW_DIR', '') -%}
    {%- set table = this.identifier | replace('stg_', '', 1) -%}
    {%- set columns = {
        'loans': 'loan_id string, customer_id string, credit_type string, product_code string, currency string, disbursement_date date, maturity_date date, original_amount decimal(18,2), outstanding_principal decimal(18,2), overdue_amount decimal(18,2), installment_amount decimal(18,2), next_due_date date, days_past_due int, accounting_status string, guarantee_type string, branch_code string, source_line int',
        'payments': 'payment_id string, loan_id string, payment_date date, amount decimal(18,2), currency string, channel string, is_reversal boolean, source_line int',
        'customers': 'customer_id string, document_type string, document_number string, full_name string, phone string, email string, ubigeo string, digital_contact_consent boolean, source_line int',
        'fx_rates': 'currency string, rate_to_pen decimal(18,6), source_line int',
    }.get(table) -%}
    {%- if execute and location and columns -%}
        {%- do run_query('create database if not exists raw') -%}
        {%- do run_query("create table if not exists raw." ~ table ~ " (" ~ columns ~ ", as_of_date date) using parquet partitioned by (as_of_date) location '" ~ location ~ "/" ~ table ~ "'") -%}
        {%- do run_query("msck repair table raw." ~ table ~ " sync partitions") -%}
    {%- endif -%}
{%- endmacro %}


{#- ---- seeds on Spark ----------------------------------------------------------------- -#}

{#- dbt-spark's seed loader (method: session) binds every value as text: an empty cell
    becomes the string 'None' and a quote breaks the statement. This override (dbt picks the
    root project's spark__load_csv_rows first) writes each value as a SQL literal instead:
    null, true/false, the exact decimal text, an ISO date, or an escaped string. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
  {%- set batch_size = get_batch_size() -%}
  {%- set column_override = model['config'].get('column_types', {}) -%}
  {%- set statements = [] -%}
  {%- for chunk in agate_table.rows | batch(batch_size) -%}
      {%- set sql -%}
          insert into {{ this.render() }} values
          {% for row in chunk -%}
              ({%- for col_name in agate_table.column_names -%}
                  {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                  {%- set type = column_override.get(col_name, inferred_type) -%}
                    cast({{ spark_seed_literal(row[loop.index0]) }} as {{ type }})
                  {%- if not loop.last %},{%- endif %}
              {%- endfor -%})
              {%- if not loop.last %},{%- endif %}
          {%- endfor %}
      {%- endset -%}
      {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
      {%- if loop.index0 == 0 -%}
          {%- do statements.append(sql) -%}
      {%- endif -%}
  {%- endfor -%}
  {{ return(statements[0]) }}
{% endmacro %}

{% macro spark_seed_literal(value) -%}
    {%- if value is none -%}
        null
    {%- elif value is sameas true -%}
        true
    {%- elif value is sameas false -%}
        false
    {%- elif value is number -%}
        {{ value }}
    {%- elif value.isoformat is defined -%}
        '{{ value.isoformat() }}'
    {%- else -%}
        '{{ (value | string).replace("\\", "\\\\").replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
