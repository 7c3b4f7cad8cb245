{#- Data tests look at the run's business dates, not at all of history.

    dbt wraps the relation every generic data test reads (`{{ model }}`) in
    get_where_subquery(); this project-level override (dbt prefers a root-project macro over
    its own) narrows that relation to the run's dates, start_date .. end_date, whenever the
    tested model, seed or source has the business-date column `as_of_date`. The day's rows
    are tested the day they are written; history tables keep their rows unchanged afterwards,
    so testing them again every day only made the daily tests grow with history.

    - A test's own `config: where:` still applies (both conditions must hold).
    - The not_null test of the date column itself is not narrowed: a row without a date
      belongs to no run, so only an unscoped test can find it (a column scan). A
      `not_null_columns` test that lists the date column reads the run's dates plus the rows
      whose date is null.
    - A test that must see all history opts out with `config: {meta: {scope_to_run_dates: false}}`.
    - Portable SQL (`between` two date literals: DuckDB, Spark, PostgreSQL): the literal lets
      the engine skip other dates' storage (zone maps, partitions).
    - Whether the relation has the column is read from the columns declared in the YAML of the
      tested node; a node that declares none is asked of the warehouse
      (adapter.get_columns_in_relation), so an undocumented model is still scoped; one that
      declares columns but not as_of_date is read whole (slower, never wrong).
-#}

{#- The business-date column of partitioned relations. -#}
{% macro run_date_column() -%}
    {{- return('as_of_date') -}}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- if execute and test_is_scoped_to_run_dates(relation) -%}
        {%- set run_dates = run_date_column() ~ ' between ' ~ date_literal(var('start_date'))
                            ~ ' and ' ~ date_literal(var('end_date')) -%}
        {%- if test_checks_date_not_null() -%}
            {%- set run_dates = '(' ~ run_dates ~ ' or ' ~ run_date_column() ~ ' is null)' -%}
        {%- endif -%}
        {%- do conditions.append(run_dates) -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{- return(filtered) -}}
    {%- else -%}
        {{- return(relation) -}}
    {%- endif -%}
{%- endmacro %}

{#- True when the test running now is a `not_null_columns` test that lists the business-date
    column: it then also reads the rows without a date, wherever they are. -#}
{% macro test_checks_date_not_null() -%}
    {%- set metadata = model.get('test_metadata') or {} -%}
    {%- if metadata.get('name') != 'not_null_columns' -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- set listed = (metadata.get('kwargs') or {}).get('column_names') or [] -%}
    {{- return(run_date_column() in (listed | map('lower') | list)) -}}
{%- endmacro %}

{#- True when the test running now (`model` is the test node) reads a relation that has the
    business-date column and the test has not opted out. -#}
{% macro test_is_scoped_to_run_dates(relation) -%}
    {%- set column = run_date_column() -%}
    {%- if (model.config.get('meta') or {}).get('scope_to_run_dates', true) is false -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- set metadata = model.get('test_metadata') or {} -%}
    {%- if metadata.get('name') == 'not_null' and (model.get('column_name') or '') | lower == column -%}
        {{- return(false) -}}
    {%- endif -%}
    {%- set found = namespace(node=graph.nodes.get(model.get('attached_node') or '') or {}) -%}
    {%- if not found.node -%}
        {#- a test on a source: its source node -#}
        {%- for source_id in model.depends_on.nodes if source_id.startswith('source.') -%}
            {%- set found.node = graph.sources.get(source_id) or {} -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set declared = (found.node.get('columns') or {}).keys() | map('lower') | list -%}
    {%- if declared -%}
        {{- return(column in declared) -}}
    {%- endif -%}
    {%- set actual = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {{- return(column in actual) -}}
{%- endmacro %}
