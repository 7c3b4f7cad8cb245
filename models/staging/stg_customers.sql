{#- Customers of every landed business date, typed, with the department (first two digits of
    the INEI ubigeo) that field coverage and reports use. PII stays in this schema. -#}
with source as (
    select * from {{ source('raw', 'customers') }}
)

select
    cast(as_of_date as date) as as_of_date,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(document_type as {{ dbt.type_string() }}) as document_type,
    cast(document_number as {{ dbt.type_string() }}) as document_number,
    cast(full_name as {{ dbt.type_string() }}) as full_name,
    cast(phone as {{ dbt.type_string() }}) as phone,
    cast(email as {{ dbt.type_string() }}) as email,
    cast(ubigeo as {{ dbt.type_string() }}) as ubigeo,
    cast(substring(ubigeo, 1, 2) as {{ dbt.type_string() }}) as department_code,
    cast(digital_contact_consent as {{ dbt.type_boolean() }}) as digital_contact_consent,
    cast(source_line as {{ dbt.type_int() }}) as source_line
from source
