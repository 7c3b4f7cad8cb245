{#- Every payment and reversal in PEN: signed (a reversal counts negative), converted at the
    rate of its own date (so a USD reversal dated later than its payment leaves the rate
    difference) and kept unrounded: money is rounded once, in paid_90d_pen. Converted once,
    when its date is processed. -#}
{{ config(
    materialized='incremental',
    pre_hook="{{ delete_run_dates() }}",
    **incremental_by_date_config()
) }}
{%- set start_date = var('start_date') -%}
{%- set end_date = var('end_date') -%}

with payments as (
    select
        as_of_date,
        payment_id,
        loan_id,
        payment_date,
        amount,
        currency,
        is_reversal
    from {{ ref('stg_payments') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

fx_rates as (
    select
        as_of_date,
        currency,
        rate_to_pen
    from {{ ref('stg_fx_rates') }}
    where as_of_date between {{ date_literal(start_date) }} and {{ date_literal(end_date) }}
),

with_rates as (
    select
        payments.*,
        case
            when payments.currency = '{{ var("base_currency") }}' then cast(1 as decimal(18, 6))
            else fx_rates.rate_to_pen
        end as rate_to_pen
    from payments
    left join fx_rates
        on fx_rates.as_of_date = payments.payment_date
        and fx_rates.currency = payments.currency
)

select
    as_of_date,
    payment_id,
    loan_id,
    payment_date,
    currency,
    amount,
    is_reversal,
    rate_to_pen,
    cast(
        case
            when is_reversal then -{{ money_times_rate('amount', 'rate_to_pen') }}
            else {{ money_times_rate('amount', 'rate_to_pen') }}
        end
        as decimal(38, 8)
    ) as amount_pen
from with_rates
