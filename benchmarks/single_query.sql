-- One hand-written DuckDB query of the whole contract (sections 2-3) for one business date,
-- over the ingested raw tables of cartera.duckdb (raw.loans, raw.payments, raw.customers,
-- raw.fx_rates) and the holiday seed (config.pe_holidays). Benchmark B6 times it against
-- cartera's transform stage; the harness also checks it returns the same rows.
--
-- This is a yardstick, not pipeline code: thresholds are literals on purpose (the default
-- rulebook and catalogue of the contract), so it shows what one query costs with no
-- configuration, incrementality or orchestration around it.
--
-- Parameter: $as_of_date (DATE), the business date D.
WITH
params AS (
    SELECT CAST($as_of_date AS DATE) AS d
),
loans_d AS (
    SELECT l.*
    FROM raw.loans AS l, params
    WHERE l.as_of_date = params.d
),
rate_d AS (  -- currency -> rate on D (PEN = 1)
    SELECT currency, rate_to_pen FROM raw.fx_rates, params WHERE as_of_date = params.d AND currency <> 'PEN'
    UNION ALL SELECT 'PEN', 1
),
-- snapshots of the 12-month window, each with the dpd of its previous snapshot
window_snapshots AS (
    SELECT
        l.loan_id,
        l.days_past_due AS dpd,
        lag(l.days_past_due) OVER (PARTITION BY l.loan_id ORDER BY l.as_of_date) AS prev_dpd
    FROM raw.loans AS l, params
    WHERE l.as_of_date BETWEEN params.d - 364 AND params.d
      AND l.loan_id IN (SELECT loan_id FROM loans_d)
),
-- for the first snapshot in the window, the previous one may be older than the window
before_window AS (
    SELECT l.loan_id, arg_max(l.days_past_due, l.as_of_date) AS dpd
    FROM raw.loans AS l, params
    WHERE l.as_of_date < params.d - 364
      AND l.loan_id IN (SELECT loan_id FROM loans_d)
    GROUP BY l.loan_id
),
history AS (
    SELECT
        w.loan_id,
        max(w.dpd) AS max_dpd_12m,
        count(*) FILTER (WHERE w.dpd > 0 AND coalesce(w.prev_dpd, b.dpd, 0) = 0) AS delinquency_episodes_12m
    FROM window_snapshots AS w
    LEFT JOIN before_window AS b USING (loan_id)
    GROUP BY w.loan_id
),
payment_history AS (
    SELECT
        p.loan_id,
        sum(CASE WHEN p.is_reversal THEN -1 ELSE 1 END * p.amount * coalesce(fx.rate_to_pen, 1))
            FILTER (WHERE p.payment_date BETWEEN params.d - 89 AND params.d) AS paid_90d,
        max(p.payment_date) FILTER (WHERE NOT p.is_reversal) AS last_payment_date
    FROM raw.payments AS p
    CROSS JOIN params
    LEFT JOIN raw.fx_rates AS fx
        ON fx.as_of_date = p.as_of_date AND fx.currency = p.currency AND p.currency <> 'PEN'
    WHERE p.as_of_date <= params.d
      AND p.loan_id IN (SELECT loan_id FROM loans_d)
    GROUP BY p.loan_id
),
features AS (
    SELECT
        l.as_of_date, l.loan_id, l.customer_id, l.credit_type, l.product_code, l.currency,
        l.accounting_status, l.guarantee_type,
        left(c.ubigeo, 2) AS department_code,
        c.digital_contact_consent,
        round(l.outstanding_principal * r.rate_to_pen, 2) AS balance_pen,
        l.days_past_due AS dpd,
        coalesce(h.max_dpd_12m, l.days_past_due) AS max_dpd_12m,
        coalesce(h.delinquency_episodes_12m, 0) AS delinquency_episodes_12m,
        CAST(coalesce(round(ph.paid_90d, 2), 0) AS DECIMAL(18, 2)) AS paid_90d_pen,
        CAST(l.as_of_date - ph.last_payment_date AS INTEGER) AS days_since_last_payment
    FROM loans_d AS l
    JOIN raw.customers AS c ON c.as_of_date = l.as_of_date AND c.customer_id = l.customer_id
    JOIN rate_d AS r ON r.currency = l.currency
    LEFT JOIN history AS h ON h.loan_id = l.loan_id
    LEFT JOIN payment_history AS ph ON ph.loan_id = l.loan_id
),
categorised AS (
    SELECT
        f.*,
        CASE
            WHEN f.dpd = 0 THEN '0' WHEN f.dpd <= 8 THEN '1-8' WHEN f.dpd <= 30 THEN '9-30'
            WHEN f.dpd <= 60 THEN '31-60' WHEN f.dpd <= 90 THEN '61-90' WHEN f.dpd <= 120 THEN '91-120'
            WHEN f.dpd <= 180 THEN '121-180' WHEN f.dpd <= 365 THEN '181-365' ELSE '>365'
        END AS dpd_bucket,
        CASE
            WHEN f.accounting_status = 'castigado' THEN 4
            WHEN f.credit_type = 'hipotecario' THEN
                CASE WHEN f.dpd <= 30 THEN 0 WHEN f.dpd <= 60 THEN 1 WHEN f.dpd <= 120 THEN 2 WHEN f.dpd <= 365 THEN 3 ELSE 4 END
            WHEN f.credit_type IN ('corporativo', 'gran_empresa', 'mediana_empresa') THEN
                CASE WHEN f.dpd = 0 THEN 0 WHEN f.dpd <= 60 THEN 1 WHEN f.dpd <= 120 THEN 2 WHEN f.dpd <= 365 THEN 3 ELSE 4 END
            ELSE
                CASE WHEN f.dpd <= 8 THEN 0 WHEN f.dpd <= 30 THEN 1 WHEN f.dpd <= 60 THEN 2 WHEN f.dpd <= 120 THEN 3 ELSE 4 END
        END AS own_rank,
        sum(f.balance_pen) OVER (PARTITION BY f.customer_id) AS customer_total
    FROM features AS f
),
aligned AS (
    SELECT
        c.*,
        greatest(c.own_rank, coalesce(max(c.own_rank) FILTER (
            WHERE c.balance_pen >= greatest(100, least(c.customer_total * 0.01,
                3 * CASE year(c.as_of_date) WHEN 2024 THEN 5150 WHEN 2025 THEN 5350 WHEN 2026 THEN 5500 END))
        ) OVER (PARTITION BY c.customer_id), 0)) AS aligned_rank
    FROM categorised AS c
),
provisioned AS (
    SELECT
        a.*,
        CAST(CASE
            WHEN a.aligned_rank = 0 THEN
                CASE WHEN a.credit_type IN ('corporativo', 'gran_empresa', 'hipotecario') THEN 0.007 ELSE 0.01 END
            ELSE [[0.05, 0.25, 0.60, 1.00], [0.025, 0.125, 0.30, 0.60], [0.0125, 0.0625, 0.15, 0.30]]
                [CASE a.guarantee_type WHEN 'ninguna' THEN 1 WHEN 'preferida' THEN 2 ELSE 3 END][a.aligned_rank]
        END AS DECIMAL(9, 6)) AS provision_rate
    FROM aligned AS a
),
segmented AS (
    SELECT
        p.*,
        round(p.balance_pen * p.provision_rate, 2) AS provision_pen,
        CASE
            WHEN p.dpd > 90 OR p.accounting_status IN ('judicial', 'castigado') THEN 3
            WHEN p.dpd > 30 OR p.accounting_status = 'refinanciado' THEN 2
            ELSE 1
        END AS ifrs9_stage,
        CASE
            WHEN p.accounting_status = 'castigado' THEN 'castigado'
            WHEN p.accounting_status = 'judicial' THEN 'judicial'
            WHEN p.dpd > 120 AND p.balance_pen >= 30000 THEN 'demanda'
            WHEN p.dpd > 120 THEN 'agencia_externa'
            WHEN p.dpd BETWEEN 91 AND 120 THEN 'prejudicial'
            WHEN p.dpd BETWEEN 31 AND 90 AND p.credit_type IN ('microempresa', 'pequena_empresa') THEN 'tardia_mype'
            WHEN p.dpd BETWEEN 31 AND 90 AND p.balance_pen >= 10000 THEN 'tardia_alto_monto'
            WHEN p.dpd BETWEEN 31 AND 90 THEN 'tardia'
            WHEN p.dpd BETWEEN 1 AND 30 AND p.delinquency_episodes_12m <= 1 AND p.max_dpd_12m <= 30
                THEN 'temprana_buen_historial'
            WHEN p.dpd BETWEEN 1 AND 30 THEN 'temprana_reincidente'
            WHEN p.dpd = 0 AND p.max_dpd_12m > 30 THEN 'preventiva'
            ELSE 'al_dia'
        END AS rule_id
    FROM provisioned AS p
),
rules (rule_id, segment_code, strategy_code) AS (
    VALUES
        ('castigado', 'CASTIGO_RECUPERO', 'RECUPERO_AGENCIA'),
        ('judicial', 'JUDICIAL', 'SEGUIMIENTO_JUDICIAL'),
        ('demanda', 'DEMANDA', 'DEMANDA_JUDICIAL'),
        ('agencia_externa', 'AGENCIA_EXTERNA', 'AGENCIA_DESCUENTO'),
        ('prejudicial', 'PREJUDICIAL', 'PREJUDICIAL_VISITA'),
        ('tardia_mype', 'TARDIA_MYPE', 'ASESOR_NEGOCIOS'),
        ('tardia_alto_monto', 'TARDIA_ALTO_MONTO', 'REFINANCIACION'),
        ('tardia', 'TARDIA', 'CALL_CENTER_PLAN'),
        ('temprana_buen_historial', 'TEMPRANA_BUEN_HISTORIAL', 'FLEXIBLE_DIGITAL'),
        ('temprana_reincidente', 'TEMPRANA_REINCIDENTE', 'CALL_CENTER_TEMPRANA'),
        ('preventiva', 'PREVENTIVA', 'RECORDATORIO_PREVENTIVO'),
        ('al_dia', 'AL_DIA', 'SIN_ACCION')
),
strategies (strategy_code, primary_channel, needs_coverage, fallback_channel, offer, assignee) AS (
    VALUES
        ('RECUPERO_AGENCIA', 'agencia_externa', false, NULL, 'descuento', 'agencia_externa'),
        ('SEGUIMIENTO_JUDICIAL', 'estudio_juridico', false, NULL, 'ninguna', 'estudio_juridico'),
        ('DEMANDA_JUDICIAL', 'estudio_juridico', false, NULL, 'ninguna', 'estudio_juridico'),
        ('AGENCIA_DESCUENTO', 'agencia_externa', false, NULL, 'descuento', 'agencia_externa'),
        ('PREJUDICIAL_VISITA', 'visita_campo', true, 'llamada', 'plan_pagos', 'interno'),
        ('ASESOR_NEGOCIOS', 'visita_asesor', true, 'llamada', 'reprogramacion', 'asesor_negocios'),
        ('REFINANCIACION', 'visita_campo', true, 'llamada', 'refinanciacion', 'interno'),
        ('CALL_CENTER_PLAN', 'llamada', false, NULL, 'plan_pagos', 'interno'),
        ('FLEXIBLE_DIGITAL', 'whatsapp', false, NULL, 'reprogramacion', 'interno'),
        ('CALL_CENTER_TEMPRANA', 'llamada', false, NULL, 'ninguna', 'interno'),
        ('RECORDATORIO_PREVENTIVO', 'sms', false, NULL, 'ninguna', 'interno'),
        ('SIN_ACCION', 'ninguno', false, NULL, 'ninguna', NULL)
),
next_contact AS (  -- first Monday-Friday after D that is not a national holiday
    SELECT min(day) AS next_contact_date
    FROM (SELECT params.d + CAST(i AS INTEGER) AS day FROM params, range(1, 15) AS t(i))
    WHERE isodow(day) <= 5 AND day NOT IN (SELECT holiday_date FROM config.pe_holidays)
)
SELECT
    s.as_of_date, s.loan_id, s.customer_id, s.credit_type, s.product_code, s.currency,
    s.accounting_status, s.guarantee_type, s.department_code, s.digital_contact_consent,
    s.balance_pen, s.dpd, s.dpd_bucket, s.max_dpd_12m, s.delinquency_episodes_12m, s.paid_90d_pen,
    s.days_since_last_payment,
    ['NOR', 'CPP', 'DEF', 'DUD', 'PER'][s.own_rank + 1] AS sbs_category,
    ['NOR', 'CPP', 'DEF', 'DUD', 'PER'][s.aligned_rank + 1] AS sbs_category_aligned,
    s.provision_rate, s.provision_pen, s.ifrs9_stage,
    r.segment_code, s.rule_id, r.strategy_code,
    CASE
        WHEN st.needs_coverage AND s.department_code NOT IN ('15', '07', '04', '13', '14', '20', '12', '08')
            THEN CASE WHEN st.fallback_channel IN ('whatsapp', 'sms', 'email') AND NOT s.digital_contact_consent
                      THEN 'llamada' ELSE st.fallback_channel END
        WHEN st.primary_channel IN ('whatsapp', 'sms', 'email') AND NOT s.digital_contact_consent THEN 'llamada'
        ELSE st.primary_channel
    END AS channel,
    st.offer, st.assignee,
    CASE WHEN r.strategy_code <> 'SIN_ACCION' THEN nc.next_contact_date END AS next_contact_date
FROM segmented AS s
JOIN rules AS r USING (rule_id)
JOIN strategies AS st ON st.strategy_code = r.strategy_code
CROSS JOIN next_contact AS nc
ORDER BY s.loan_id
