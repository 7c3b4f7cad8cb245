{#- Money arithmetic. Contract section 2: money is rounded to 2 decimals, half away from
    zero, once, where it is defined. DECIMAL arithmetic keeps every intermediate exact. -#}

{#- An amount (2 decimals) times a rate (at most 6 decimals: an exchange rate to PEN, a
    provision rate), exact with 8 decimals. The amount is widened first so the product cannot
    overflow (DuckDB keeps DECIMAL(18,2) x DECIMAL(18,6) at width 18). -#}
{% macro money_times_rate(amount, rate) -%}
    {{ return(adapter.dispatch('money_times_rate', 'cartera')(amount, rate)) }}
{%- endmacro %}

{% macro default__money_times_rate(amount, rate) -%}
    (cast({{ amount }} as decimal(20, 2)) * cast({{ rate }} as decimal(18, 6)))
{%- endmacro %}

{#- Spark widens DECIMAL products itself (p1 + p2 + 1) and, past 38 digits, drops scale:
    DECIMAL(20,2) x DECIMAL(18,6) would come out with 7 decimals, rounded. DECIMAL(18,2) x
    DECIMAL(18,6) gives DECIMAL(37,8): the exact product, as on DuckDB. -#}
{% macro spark__money_times_rate(amount, rate) -%}
    (cast({{ amount }} as decimal(18, 2)) * cast({{ rate }} as decimal(18, 6)))
{%- endmacro %}

{#- Round to 2 decimals, half away from zero, as DECIMAL(18,2). -#}
{% macro round_money(expression) -%}
    {{ return(adapter.dispatch('round_money', 'cartera')(expression)) }}
{%- endmacro %}

{#- round() on DECIMAL rounds half away from zero on DuckDB, Spark (HALF_UP) and PostgreSQL. -#}
{% macro default__round_money(expression) -%}
    cast(round({{ expression }}, 2) as decimal(18, 2))
{%- endmacro %}
