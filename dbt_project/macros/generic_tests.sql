{#- Generic data tests the project needs (the dbt package hub is not reachable, so no
    dbt_utils). Each returns the offending rows; `config: where:` narrows {{ model }} to
    the run's dates as usual. -#}

{#- No two rows share the values of `combination_of_columns` (e.g. as_of_date + loan_id). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select
    {{ combination_of_columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Every non-null value of the column exists in `to`.`field` on the same business date
    (`date_column` on both sides). Joining on the date lets the warehouse read only the
    parent rows of the dates under test instead of all history. -#}
{% test relationships_on_date(model, column_name, to, field, date_column='as_of_date') %}
select
    child.{{ date_column }},
    child.{{ column_name }}
from (select * from {{ model }}) as child
left join {{ to }} as parent
    on parent.{{ field }} = child.{{ column_name }}
    and parent.{{ date_column }} = child.{{ date_column }}
where child.{{ column_name }} is not null
    and parent.{{ field }} is null
{% endtest %}

{#- Configuration given as lower bounds only (a value falls in the row with the highest
    lower bound <= it, so ranges cannot overlap or leave gaps) must start at 0 in each group:
    returns the groups whose smallest lower bound is not 0. -#}
{% test ranges_start_at_zero(model, lower_column, group_by_columns=[]) %}
select
    {% for column in group_by_columns %}{{ column }}, {% endfor %}
    min({{ lower_column }}) as smallest_lower_bound
from {{ model }}
{%- if group_by_columns %}
group by {{ group_by_columns | join(', ') }}
{%- endif %}
having min({{ lower_column }}) <> 0
{% endtest %}

{#- None of `column_names` is null: one test (one scan) per model instead of one `not_null`
    test per column. Each dbt test is a node with its own query and ~20 ms of dbt overhead,
    and a model's columns are read together anyway. Returns one row per column that has
    nulls, with how many; the test fails on the total of null cells, so its message says
    "Got N results" for N null values, and `--store-failures` keeps which columns.
    The business-date column is checked over all history too (see test_scoping.sql): a row
    without a date belongs to no run. -#}
{% test not_null_columns(model, column_names) %}
{{ config(fail_calc='coalesce(sum(null_rows), 0)') }}
with null_counts as (
    select
        {%- for column in column_names %}
        sum(case when {{ column }} is null then 1 else 0 end) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
)
{%- for column in column_names %}
select '{{ column }}' as column_name, {{ column }} as null_rows from null_counts where {{ column }} > 0
{{ 'union all' if not loop.last }}
{%- endfor %}
{% endtest %}
