{#- Loans of every landed business date, typed. A view: filters on as_of_date reach the raw
    table, so a run reads only the dates it needs. -#}
with source as (
    select * from {{ source('raw', 'loans') }}
)

select
    cast(as_of_date as date) as as_of_date,
    cast(loan_id as {{ dbt.type_string() }}) as loan_id,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(credit_type as {{ dbt.type_string() }}) as credit_type,
    cast(product_code as {{ dbt.type_string() }}) as product_code,
    cast(currency as {{ dbt.type_string() }}) as currency,
    cast(disbursement_date as date) as disbursement_date,
    cast(maturity_date as date) as maturity_date,
    cast(original_amount as decimal(18, 2)) as original_amount,
    cast(outstanding_principal as decimal(18, 2)) as outstanding_principal,
    cast(overdue_amount as decimal(18, 2)) as overdue_amount,
    cast(installment_amount as decimal(18, 2)) as installment_amount,
    cast(next_due_date as date) as next_due_date,
    cast(days_past_due as {{ dbt.type_int() }}) as days_past_due,
    cast(accounting_status as {{ dbt.type_string() }}) as accounting_status,
    cast(guarantee_type as {{ dbt.type_string() }}) as guarantee_type,
    cast(branch_code as {{ dbt.type_string() }}) as branch_code,
    cast(source_line as {{ dbt.type_int() }}) as source_line
from source
