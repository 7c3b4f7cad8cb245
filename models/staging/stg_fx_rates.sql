{#- SBS accounting rate to PEN of each non-PEN currency, per business date. -#}
with source as (
    select * from {{ source('raw', 'fx_rates') }}
)

select
    cast(as_of_date as date) as as_of_date,
    cast(currency as {{ dbt.type_string() }}) as currency,
    cast(rate_to_pen as decimal(18, 6)) as rate_to_pen,
    cast(source_line as {{ dbt.type_int() }}) as source_line
from source
