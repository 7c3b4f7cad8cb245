{#- Payments and reversals of every landed business date, typed. -#}
with source as (
    select * from {{ source('raw', 'payments') }}
)

select
    cast(as_of_date as date) as as_of_date,
    cast(payment_id as {{ dbt.type_string() }}) as payment_id,
    cast(loan_id as {{ dbt.type_string() }}) as loan_id,
    cast(payment_date as date) as payment_date,
    cast(amount as decimal(18, 2)) as amount,
    cast(currency as {{ dbt.type_string() }}) as currency,
    cast(channel as {{ dbt.type_string() }}) as channel,
    cast(is_reversal as {{ dbt.type_boolean() }}) as is_reversal,
    cast(source_line as {{ dbt.type_int() }}) as source_line
from source
