{#- Strategy, channel and next contact day per loan and business date of the run.
    channel = the strategy's primary channel, then
      1. field coverage: a strategy that needs field staff uses its fallback channel when the
         customer's department is not in field_coverage_departments;
      2. consent: a digital channel (var digital_channels) without digital_contact_consent
         becomes var consent_fallback_channel.
    next_contact_date is null for strategies whose channel is var no_action_channel. -#}
{{ config(materialized='view') }}

with segments as (
    select * from {{ ref('int_loan_segments') }}
),

strategies as (
    -- an empty cell in the seed means "none" (seed loads give null, unit-test fixtures '')
    select
        strategy_code,
        primary_channel,
        needs_field_coverage,
        nullif(fallback_channel, '') as fallback_channel,
        offer,
        nullif(assignee, '') as assignee
    from {{ ref('strategies') }}
),

coverage as (
    select department_code
    from {{ ref('field_coverage_departments') }}
),

calendar as (
    select calendar_date, next_contact_date
    from {{ ref('int_contact_calendar') }}
),

routed as (
    select
        segments.*,
        strategies.primary_channel,
        strategies.fallback_channel,
        strategies.offer,
        strategies.assignee,
        (strategies.needs_field_coverage and coverage.department_code is null) as lacks_field_coverage
    from segments
    inner join strategies
        on strategies.strategy_code = segments.strategy_code
    left join coverage
        on coverage.department_code = segments.department_code
),

covered as (
    select
        routed.*,
        case
            when routed.lacks_field_coverage then routed.fallback_channel
            else routed.primary_channel
        end as coverage_channel
    from routed
),

consented as (
    select
        covered.*,
        (covered.coverage_channel in {{ rulebook_string_list(var('digital_channels')) }}
            and not coalesce(covered.digital_contact_consent, false)) as lacks_digital_consent
    from covered
)

select
    consented.*,
    case
        when consented.lacks_digital_consent then {{ rulebook_string_literal(var('consent_fallback_channel')) }}
        else consented.coverage_channel
    end as channel,
    case
        when consented.coverage_channel = {{ rulebook_string_literal(var('no_action_channel')) }} then null
        else calendar.next_contact_date
    end as next_contact_date
from consented
left join calendar
    on calendar.calendar_date = consented.as_of_date
