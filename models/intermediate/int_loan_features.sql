{#- The features contract (docs/design.md): one row per loan and business date of the run,
    every value of contract section 2. The rulebook's conditions may reference exactly these
    columns. Rebuilt each run with the run's dates only; the marts keep the history.
    - sbs_category_aligned: the riskier of the loan's own category and its customer's worst
      category among loans over the alignment threshold (int_customer_alignment);
    - provision_rate: seed provision_rates by aligned category, guarantee type and the
      credit type's provision group; provision_pen = balance_pen x rate, rounded once;
    - ifrs9_stage: the higher of the stage by dpd (seed ifrs9_stage_thresholds) and the
      minimum stage of the accounting status (seed accounting_statuses). -#}
{{ config(materialized='table', contract={'enforced': true}) }}

with loans as (
    select *
    from {{ ref('int_loan_categories') }}
),

windows as (
    select *
    from {{ ref('int_loan_windows') }}
),

alignment as (
    select
        as_of_date,
        customer_id,
        worst_risk_order
    from {{ ref('int_customer_alignment') }}
),

sbs_categories as (
    select sbs_category, risk_order
    from {{ ref('sbs_categories') }}
),

credit_type_groups as (
    select credit_type, provision_group
    from {{ ref('credit_type_groups') }}
),

provision_rates as (
    select sbs_category, guarantee_type, provision_group, provision_rate
    from {{ ref('provision_rates') }}
),

accounting_statuses as (
    select accounting_status, min_ifrs9_stage
    from {{ ref('accounting_statuses') }}
),

ifrs9_stage_thresholds as (
    select ifrs9_stage, min_dpd
    from {{ ref('ifrs9_stage_thresholds') }}
),

ifrs9_dpd_ranges as (
    select
        ifrs9_stage,
        min_dpd,
        lead(min_dpd) over (order by min_dpd) as next_min_dpd
    from ifrs9_stage_thresholds
),

aligned as (
    select
        loans.*,
        case
            when alignment.worst_risk_order > loans.sbs_risk_order then alignment.worst_risk_order
            else loans.sbs_risk_order
        end as aligned_risk_order
    from loans
    left join alignment
        on alignment.as_of_date = loans.as_of_date
        and alignment.customer_id = loans.customer_id
),

provisioned as (
    select
        aligned.*,
        sbs_categories.sbs_category as sbs_category_aligned,
        provision_rates.provision_rate,
        case
            when accounting_statuses.min_ifrs9_stage > ifrs9_dpd_ranges.ifrs9_stage then accounting_statuses.min_ifrs9_stage
            else ifrs9_dpd_ranges.ifrs9_stage
        end as ifrs9_stage
    from aligned
    left join sbs_categories
        on sbs_categories.risk_order = aligned.aligned_risk_order
    left join credit_type_groups
        on credit_type_groups.credit_type = aligned.credit_type
    left join provision_rates
        on provision_rates.sbs_category = sbs_categories.sbs_category
        and provision_rates.guarantee_type = aligned.guarantee_type
        and provision_rates.provision_group = credit_type_groups.provision_group
    left join accounting_statuses
        on accounting_statuses.accounting_status = aligned.accounting_status
    left join ifrs9_dpd_ranges
        on aligned.dpd >= ifrs9_dpd_ranges.min_dpd
        and (ifrs9_dpd_ranges.next_min_dpd is null or aligned.dpd < ifrs9_dpd_ranges.next_min_dpd)
)

select
    provisioned.as_of_date,
    provisioned.loan_id,
    provisioned.customer_id,
    provisioned.credit_type,
    provisioned.product_code,
    provisioned.currency,
    provisioned.accounting_status,
    provisioned.guarantee_type,
    provisioned.department_code,
    provisioned.digital_contact_consent,
    provisioned.balance_pen,
    cast(provisioned.dpd as {{ dbt.type_int() }}) as dpd,
    provisioned.dpd_bucket,
    windows.max_dpd_12m,
    windows.delinquency_episodes_12m,
    windows.paid_90d_pen,
    windows.days_since_last_payment,
    provisioned.sbs_category,
    provisioned.sbs_category_aligned,
    cast(provisioned.provision_rate as decimal(9, 6)) as provision_rate,
    {{ round_money(money_times_rate('provisioned.balance_pen', 'provisioned.provision_rate')) }} as provision_pen,
    cast(provisioned.ifrs9_stage as {{ dbt.type_int() }}) as ifrs9_stage
from provisioned
left join windows
    on windows.as_of_date = provisioned.as_of_date
    and windows.loan_id = provisioned.loan_id
