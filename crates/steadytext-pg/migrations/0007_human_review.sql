-- Human review of stored analyses: provenance, a review queue, and verdicts that stick.
--
-- steadytext_analyses: one row per analysed subject, written in the same transaction as the
--   analysis itself (steadytext_pg's review, ticket, churn and segment writes):
--     subject_kind        'review' | 'ticket' | 'churn' | 'segment'
--     subject_id          product_reviews.id | support_tickets.id | customers.id | segment name
--     needs_human_review  the result's human-review flag (true exactly when reasons is non-empty)
--     reasons             high_churn_risk, critical_urgency, very_negative_sentiment,
--                         low_choice_margin (steadytext_schema::HumanReviewReason)
--     ai_values           the analysis's own values of the fields a verdict can set, e.g.
--                         {"sentiment": "very_negative"} (unchanged by verdicts)
--     prompt_version, model_id (the backend's identity), calibration_id (NULL: none recorded)
--     computed_at         when the analysis was last written
--     changed_at          when its outcome (flag, reasons, ai_values, prompt version, model,
--                         calibration) last changed; a re-analysis with the same outcome keeps it
--   A subject's row is deleted with the subject.
--
-- steadytext_human_verdicts: append-only (UPDATE and DELETE raise). One row per decision:
--   who (reviewer, required, non-blank), when (decided_at: the moment the verdict took the
--   subject's row lock), the field, value_before (the seed column's value just before) and
--   value_after (normalised), and an optional note. Ids grow in decision order per subject.
--
-- Recording a verdict (either form; both validate, lock the subject, fill value_before and
-- update the seed's column):
--     SELECT steadytext_record_verdict('review', '12', 'sentiment', 'negative', 'alice');
--     SELECT steadytext_record_verdict('ticket', '3', 'urgency', 'critical', 'bob', 'VIP');
--     INSERT INTO steadytext_human_verdicts (subject_kind, subject_id, field, value_after, reviewer)
--     VALUES ('churn', '7', 'churn_risk_score', '0.4', 'carol');
--
-- The closed set of fields (also the view steadytext_verdict_fields):
--     review.sentiment         product_reviews.sentiment: very_positive, positive, neutral,
--                              negative, very_negative
--     ticket.urgency           support_tickets.ai_analysis->'urgency': low, medium, high, critical
--     ticket.sentiment         support_tickets.ai_analysis->'sentiment': angry, frustrated,
--                              neutral, satisfied, happy
--     ticket.category          support_tickets.ai_analysis->'category': a key of
--                              steadytext_taxonomy (the tags keep the category first)
--     churn.churn_risk_score   customers.churn_risk_score: a number from 0 to 1 (2 decimals)
--   Kinds and fields are case-insensitive; closed-set values too ("Very Negative" and
--   "very-negative" are very_negative). Errors (SQLSTATE):
--     42704 unknown kind or field, 22023 invalid value, P0002 unknown subject,
--     22004 missing reviewer. Nothing is recorded then.
--   A review verdict also sets its logged interaction's sentiment_score; a ticket verdict sets
--   the keys in its interaction's metadata (and sentiment_score) and appends
--   "<field>: set by a human reviewer" to ai_analysis.rules.
--
-- Protection: BEFORE UPDATE triggers on product_reviews, support_tickets and customers put the
-- latest verdict's value of every labelled field back whenever an update would change it, so
-- no re-analysis (by any writer, the seed's own functions included) overwrites a human's
-- value. To change a human's value, record a new verdict. The re-analyse-on-edit triggers
-- (0002, 0004) watch other columns and are unaffected.
--
-- steadytext_review_queue: subjects whose latest analysis needs a human and that have no
-- verdict recorded since that analysis's outcome last changed (changed_at), oldest first, with
-- the reasons, provenance, the AI's and the current values and a short text of the subject
-- (a customer appears by id only, never by name or email). Any verdict on a subject settles
-- it; to confirm the AI's value, record it as the verdict.

CREATE TABLE IF NOT EXISTS steadytext_analyses (
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('review', 'ticket', 'churn', 'segment')),
    subject_id TEXT NOT NULL CHECK (btrim(subject_id) <> ''),
    needs_human_review BOOLEAN NOT NULL,
    reasons TEXT[] NOT NULL DEFAULT '{}',
    ai_values JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(ai_values) = 'object'),
    prompt_version TEXT NOT NULL,
    model_id TEXT NOT NULL,
    calibration_id TEXT,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_kind, subject_id),
    CHECK (needs_human_review = (cardinality(reasons) > 0)),
    CHECK (subject_kind = 'segment' OR subject_id ~ '^[0-9]{1,10}$')
);
CREATE INDEX IF NOT EXISTS steadytext_analyses_flagged
    ON steadytext_analyses (changed_at) WHERE needs_human_review;

-- Ids come from the insert trigger (taken under the subject's lock), not a column default.
CREATE SEQUENCE IF NOT EXISTS steadytext_human_verdicts_id_seq;
CREATE TABLE IF NOT EXISTS steadytext_human_verdicts (
    id BIGINT PRIMARY KEY,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value_before TEXT,
    value_after TEXT NOT NULL,
    reviewer TEXT NOT NULL CHECK (btrim(reviewer) <> ''),
    note TEXT,
    decided_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((subject_kind, field) IN (('review', 'sentiment'), ('ticket', 'urgency'),
                                     ('ticket', 'sentiment'), ('ticket', 'category'),
                                     ('churn', 'churn_risk_score')))
);
ALTER SEQUENCE steadytext_human_verdicts_id_seq OWNED BY steadytext_human_verdicts.id;
CREATE INDEX IF NOT EXISTS steadytext_human_verdicts_subject
    ON steadytext_human_verdicts (subject_kind, subject_id, field, id);
CREATE INDEX IF NOT EXISTS steadytext_human_verdicts_decided
    ON steadytext_human_verdicts (subject_kind, subject_id, decided_at);

-- The fields a verdict can set and their values (NULL allowed_values: see description).
CREATE OR REPLACE VIEW steadytext_verdict_fields AS
SELECT * FROM (VALUES
    ('review', 'sentiment', 'product_reviews.sentiment',
     ARRAY['very_positive', 'positive', 'neutral', 'negative', 'very_negative'],
     'a review sentiment label', 1),
    ('ticket', 'urgency', 'support_tickets.ai_analysis->''urgency''',
     ARRAY['low', 'medium', 'high', 'critical'], 'a ticket urgency', 2),
    ('ticket', 'sentiment', 'support_tickets.ai_analysis->''sentiment''',
     ARRAY['angry', 'frustrated', 'neutral', 'satisfied', 'happy'],
     'a ticket sentiment label', 3),
    ('ticket', 'category', 'support_tickets.ai_analysis->''category''',
     (SELECT array_agg(key ORDER BY position, key) FROM steadytext_taxonomy),
     'a key of steadytext_taxonomy', 4),
    ('churn', 'churn_risk_score', 'customers.churn_risk_score',
     NULL::text[], 'a number from 0 to 1 (stored with 2 decimals)', 5)
) AS f (subject_kind, field, seed_column, allowed_values, description, position);

-- The score of a sentiment label (the seed's CASE tables); NULL for anything else.
CREATE OR REPLACE FUNCTION steadytext_sentiment_score(p_kind TEXT, p_label TEXT)
RETURNS NUMERIC LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind
        WHEN 'review' THEN CASE p_label
            WHEN 'very_positive' THEN 1.0 WHEN 'positive' THEN 0.5 WHEN 'neutral' THEN 0.0
            WHEN 'negative' THEN -0.5 WHEN 'very_negative' THEN -1.0 END
        WHEN 'ticket' THEN CASE p_label
            WHEN 'angry' THEN -1.0 WHEN 'frustrated' THEN -0.5 WHEN 'neutral' THEN 0.0
            WHEN 'satisfied' THEN 0.5 WHEN 'happy' THEN 1.0 END
    END;
$$;

-- `p_value` checked against the closed set of (p_kind, p_field) and normalised; raises
-- 42704 (unknown kind or field) or 22023 (invalid value). Kind and field must be normalised.
CREATE OR REPLACE FUNCTION steadytext_verdict_value(p_kind TEXT, p_field TEXT, p_value TEXT)
RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
DECLARE
    f RECORD;
    v TEXT := btrim(p_value);
    n NUMERIC;
BEGIN
    SELECT * INTO f FROM steadytext_verdict_fields WHERE subject_kind = p_kind AND field = p_field;
    IF NOT FOUND THEN
        IF p_kind IS NULL OR p_kind NOT IN ('review', 'ticket', 'churn', 'segment') THEN
            RAISE EXCEPTION 'unknown subject kind %: a verdict is about a review, a ticket or churn',
                quote_nullable(p_kind)
                USING ERRCODE = '42704',
                      HINT = 'fields: review.sentiment, ticket.urgency, ticket.sentiment, '
                             'ticket.category, churn.churn_risk_score';
        END IF;
        RAISE EXCEPTION 'unknown field % of a %: %', quote_nullable(p_field), p_kind,
            coalesce((SELECT 'one of ' || string_agg(field, ', ' ORDER BY position)
                      FROM steadytext_verdict_fields WHERE subject_kind = p_kind),
                     'no field of a ' || p_kind || ' takes a verdict')
            USING ERRCODE = '42704';
    END IF;
    IF f.allowed_values IS NULL THEN
        -- churn.churn_risk_score: a plain decimal number in [0, 1].
        IF v IS NULL OR v !~ '^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN
            RAISE EXCEPTION 'invalid value % for %.%: %', quote_nullable(p_value), p_kind, p_field,
                f.description USING ERRCODE = '22023';
        END IF;
        n := v::numeric;
        IF n > 1 THEN
            RAISE EXCEPTION 'invalid value % for %.%: %', quote_nullable(p_value), p_kind, p_field,
                f.description USING ERRCODE = '22023';
        END IF;
        RETURN round(n, 2)::numeric(3, 2)::text;
    END IF;
    IF cardinality(f.allowed_values) IS NULL THEN
        RAISE EXCEPTION 'no value is valid for %.%: steadytext_taxonomy is empty', p_kind, p_field
            USING ERRCODE = '22023';
    END IF;
    -- As the Rust enums parse: case-insensitive, runs of spaces, '-' and '_' as one '_'.
    IF NOT (lower(v) = ANY (f.allowed_values)) THEN
        v := regexp_replace(lower(v), '[\s_-]+', '_', 'g');
    ELSE
        v := lower(v);
    END IF;
    IF v IS NULL OR NOT (v = ANY (f.allowed_values)) THEN
        RAISE EXCEPTION 'invalid value % for %.% (%): one of %', quote_nullable(p_value), p_kind,
            p_field, f.description, array_to_string(f.allowed_values, ', ')
            USING ERRCODE = '22023';
    END IF;
    RETURN v;
END;
$$;

-- The value of the latest verdict on (kind, id, field), or NULL.
CREATE OR REPLACE FUNCTION steadytext_latest_verdict(p_kind TEXT, p_id TEXT, p_field TEXT)
RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT value_after FROM steadytext_human_verdicts
    WHERE subject_kind = p_kind AND subject_id = p_id AND field = p_field
    ORDER BY id DESC LIMIT 1;
$$;

-- A ticket analysis (ai_analysis, or its interaction's metadata) with the latest verdict of
-- each labelled field applied: the field's key set, a new category put first in the tags
-- (replacing the old one, at most 5), and "<field>: set by a human reviewer" in the rules.
-- Anything but a JSON object is returned as it is.
CREATE OR REPLACE FUNCTION steadytext_ticket_with_verdicts(p_analysis JSONB, p_ticket_id INTEGER)
RETURNS JSONB LANGUAGE plpgsql STABLE AS $$
DECLARE
    r RECORD;
    v_result JSONB := p_analysis;
    v_rule TEXT;
BEGIN
    IF p_analysis IS NULL OR jsonb_typeof(p_analysis) <> 'object' THEN
        RETURN p_analysis;
    END IF;
    FOR r IN
        SELECT DISTINCT ON (field) field, value_after FROM steadytext_human_verdicts
        WHERE subject_kind = 'ticket' AND subject_id = p_ticket_id::text
        ORDER BY field, id DESC
    LOOP
        IF r.field = 'category' AND jsonb_typeof(v_result->'tags') = 'array' THEN
            v_result := jsonb_set(v_result, '{tags}', (
                SELECT jsonb_agg(t ORDER BY i) FROM (
                    SELECT r.value_after AS t, 0::bigint AS i
                    UNION ALL
                    SELECT x.t, x.i FROM jsonb_array_elements_text(v_result->'tags')
                        WITH ORDINALITY AS x (t, i)
                    WHERE x.t IS DISTINCT FROM v_result->>'category' AND x.t <> r.value_after
                    ORDER BY i LIMIT 5
                ) tags));
        END IF;
        v_result := jsonb_set(v_result, ARRAY[r.field], to_jsonb(r.value_after));
        v_rule := r.field || ': set by a human reviewer';
        IF v_result->'rules' IS NULL OR jsonb_typeof(v_result->'rules') <> 'array' THEN
            v_result := jsonb_set(v_result, '{rules}', jsonb_build_array(v_rule));
        ELSIF NOT (v_result->'rules' @> jsonb_build_array(v_rule)) THEN
            v_result := jsonb_set(v_result, '{rules}', (v_result->'rules') || jsonb_build_array(v_rule));
        END IF;
    END LOOP;
    RETURN v_result;
END;
$$;

-- Validate a verdict, lock its subject, fill value_before, number it in decision order.
CREATE OR REPLACE FUNCTION steadytext_verdict_before_insert()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    v_id BIGINT;
    v_found BOOLEAN;
    v_before TEXT;
BEGIN
    NEW.subject_kind := lower(btrim(NEW.subject_kind));
    NEW.field := lower(btrim(NEW.field));
    IF NEW.reviewer IS NULL OR btrim(NEW.reviewer) = '' THEN
        RAISE EXCEPTION 'a verdict needs a reviewer (who decided it)' USING ERRCODE = '22004';
    END IF;
    NEW.reviewer := btrim(NEW.reviewer);
    NEW.value_after := steadytext_verdict_value(NEW.subject_kind, NEW.field, NEW.value_after);
    IF btrim(NEW.subject_id) ~ '^[0-9]{1,10}$' AND btrim(NEW.subject_id)::bigint <= 2147483647 THEN
        v_id := btrim(NEW.subject_id)::bigint;
    END IF;
    CASE NEW.subject_kind
        WHEN 'review' THEN
            SELECT true, sentiment INTO v_found, v_before
            FROM product_reviews WHERE id = v_id FOR UPDATE;
        WHEN 'ticket' THEN
            SELECT true, ai_analysis->>NEW.field INTO v_found, v_before
            FROM support_tickets WHERE id = v_id FOR UPDATE;
        ELSE
            SELECT true, churn_risk_score::text INTO v_found, v_before
            FROM customers WHERE id = v_id FOR UPDATE;
    END CASE;
    IF v_found IS NOT TRUE THEN
        RAISE EXCEPTION 'no % with id %', CASE NEW.subject_kind WHEN 'churn' THEN 'customer'
                                               ELSE NEW.subject_kind END,
            quote_nullable(NEW.subject_id)
            USING ERRCODE = 'P0002';
    END IF;
    -- Numbered and timed under the subject's lock: per subject, a later id is a later decision.
    NEW.id := nextval('steadytext_human_verdicts_id_seq');
    NEW.subject_id := v_id::text;
    NEW.value_before := v_before;
    NEW.decided_at := clock_timestamp();
    RETURN NEW;
END;
$$;

-- Put the verdict into the seed's column (and the subject's logged interaction).
CREATE OR REPLACE FUNCTION steadytext_verdict_after_insert()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    CASE NEW.subject_kind
        WHEN 'review' THEN
            UPDATE product_reviews SET sentiment = NEW.value_after WHERE id = NEW.subject_id::int;
            UPDATE customer_interactions
            SET sentiment_score = steadytext_sentiment_score('review', NEW.value_after)
            WHERE interaction_type = 'review' AND metadata->>'review_id' = NEW.subject_id;
        WHEN 'ticket' THEN
            UPDATE support_tickets
            SET ai_analysis = steadytext_ticket_with_verdicts(ai_analysis, id)
            WHERE id = NEW.subject_id::int;
            UPDATE customer_interactions
            SET metadata = steadytext_ticket_with_verdicts(metadata, NEW.subject_id::int),
                sentiment_score = CASE WHEN NEW.field = 'sentiment'
                    THEN steadytext_sentiment_score('ticket', NEW.value_after)
                    ELSE sentiment_score END
            WHERE interaction_type = 'support' AND metadata->>'ticket_id' = NEW.subject_id;
        WHEN 'churn' THEN
            UPDATE customers SET churn_risk_score = NEW.value_after::numeric, updated_at = now()
            WHERE id = NEW.subject_id::int;
    END CASE;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION steadytext_verdicts_are_append_only()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'steadytext_human_verdicts is append-only: record a new verdict instead'
        USING ERRCODE = '55000';
END;
$$;

DROP TRIGGER IF EXISTS steadytext_verdict_checked ON steadytext_human_verdicts;
CREATE TRIGGER steadytext_verdict_checked
    BEFORE INSERT ON steadytext_human_verdicts
    FOR EACH ROW EXECUTE FUNCTION steadytext_verdict_before_insert();
DROP TRIGGER IF EXISTS steadytext_verdict_applied ON steadytext_human_verdicts;
CREATE TRIGGER steadytext_verdict_applied
    AFTER INSERT ON steadytext_human_verdicts
    FOR EACH ROW EXECUTE FUNCTION steadytext_verdict_after_insert();
DROP TRIGGER IF EXISTS steadytext_verdicts_append_only ON steadytext_human_verdicts;
CREATE TRIGGER steadytext_verdicts_append_only
    BEFORE UPDATE OR DELETE ON steadytext_human_verdicts
    FOR EACH ROW EXECUTE FUNCTION steadytext_verdicts_are_append_only();

-- Record a verdict; returns its id. See the header for the fields, values and errors.
CREATE OR REPLACE FUNCTION steadytext_record_verdict(
    p_kind TEXT,
    p_id TEXT,
    p_field TEXT,
    p_value TEXT,
    p_reviewer TEXT,
    p_note TEXT DEFAULT NULL
) RETURNS BIGINT LANGUAGE sql AS $$
    INSERT INTO steadytext_human_verdicts (subject_kind, subject_id, field, value_after, reviewer, note)
    VALUES (p_kind, p_id, p_field, p_value, p_reviewer, p_note)
    RETURNING id;
$$;

-- Protection: the latest verdict's value wins over any update of a labelled field.
CREATE OR REPLACE FUNCTION steadytext_keep_review_verdicts()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    v TEXT := steadytext_latest_verdict('review', NEW.id::text, 'sentiment');
BEGIN
    IF v IS NOT NULL THEN
        NEW.sentiment := v;
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION steadytext_keep_ticket_verdicts()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    NEW.ai_analysis := steadytext_ticket_with_verdicts(NEW.ai_analysis, NEW.id);
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION steadytext_keep_churn_verdicts()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    v TEXT := steadytext_latest_verdict('churn', NEW.id::text, 'churn_risk_score');
BEGIN
    IF v IS NOT NULL THEN
        NEW.churn_risk_score := v::numeric;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS steadytext_review_keeps_verdicts ON product_reviews;
CREATE TRIGGER steadytext_review_keeps_verdicts
    BEFORE UPDATE ON product_reviews
    FOR EACH ROW WHEN (NEW.sentiment IS DISTINCT FROM OLD.sentiment)
    EXECUTE FUNCTION steadytext_keep_review_verdicts();
DROP TRIGGER IF EXISTS steadytext_ticket_keeps_verdicts ON support_tickets;
CREATE TRIGGER steadytext_ticket_keeps_verdicts
    BEFORE UPDATE ON support_tickets
    FOR EACH ROW WHEN (NEW.ai_analysis IS DISTINCT FROM OLD.ai_analysis)
    EXECUTE FUNCTION steadytext_keep_ticket_verdicts();
DROP TRIGGER IF EXISTS steadytext_customer_keeps_verdicts ON customers;
CREATE TRIGGER steadytext_customer_keeps_verdicts
    BEFORE UPDATE ON customers
    FOR EACH ROW WHEN (NEW.churn_risk_score IS DISTINCT FROM OLD.churn_risk_score)
    EXECUTE FUNCTION steadytext_keep_churn_verdicts();

-- A deleted subject's analysis row goes with it (its verdicts stay: they are the record).
CREATE OR REPLACE FUNCTION steadytext_forget_analysis()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    v_id TEXT;
BEGIN
    IF TG_ARGV[0] = 'segment' THEN
        v_id := OLD.segment_name;
    ELSE
        v_id := OLD.id::text;
    END IF;
    DELETE FROM steadytext_analyses WHERE subject_kind = TG_ARGV[0] AND subject_id = v_id;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS steadytext_review_forgotten ON product_reviews;
CREATE TRIGGER steadytext_review_forgotten
    AFTER DELETE ON product_reviews
    FOR EACH ROW EXECUTE FUNCTION steadytext_forget_analysis('review');
DROP TRIGGER IF EXISTS steadytext_ticket_forgotten ON support_tickets;
CREATE TRIGGER steadytext_ticket_forgotten
    AFTER DELETE ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION steadytext_forget_analysis('ticket');
DROP TRIGGER IF EXISTS steadytext_customer_forgotten ON customers;
CREATE TRIGGER steadytext_customer_forgotten
    AFTER DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION steadytext_forget_analysis('churn');
DROP TRIGGER IF EXISTS steadytext_segment_forgotten ON customer_segments_analysis;
CREATE TRIGGER steadytext_segment_forgotten
    AFTER DELETE ON customer_segments_analysis
    FOR EACH ROW EXECUTE FUNCTION steadytext_forget_analysis('segment');

-- `p_text` on one line, at most `p_max` characters (an ellipsis marks a cut).
CREATE OR REPLACE FUNCTION steadytext_excerpt(p_text TEXT, p_max INTEGER)
RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN length(t) > p_max THEN rtrim(left(t, p_max - 1)) || '…' ELSE t END
    FROM (SELECT nullif(btrim(regexp_replace(p_text, '\s+', ' ', 'g')), '') AS t) x;
$$;

CREATE OR REPLACE VIEW steadytext_review_queue AS
SELECT a.subject_kind, a.subject_id, a.reasons, s.subject_text, a.ai_values, s.current_values,
       a.prompt_version, a.model_id, a.calibration_id, a.computed_at, a.changed_at
FROM steadytext_analyses a
CROSS JOIN LATERAL (
    SELECT format('rating %s/5: %s', coalesce(r.rating::text, '-'),
                  coalesce(concat_ws(' — ', steadytext_excerpt(r.title, 80),
                                     steadytext_excerpt(r.review_text, 160)), '(no text)'))
               AS subject_text,
           jsonb_build_object('sentiment', r.sentiment) AS current_values
    FROM product_reviews r
    WHERE a.subject_kind = 'review'
      AND r.id = CASE WHEN a.subject_kind = 'review' THEN a.subject_id::bigint END
    UNION ALL
    SELECT coalesce(concat_ws(': ', t.ticket_number,
                              coalesce(steadytext_excerpt(t.subject, 120),
                                       steadytext_excerpt(t.description, 120))), '(no text)'),
           jsonb_build_object('urgency', t.ai_analysis->'urgency',
                              'sentiment', t.ai_analysis->'sentiment',
                              'category', t.ai_analysis->'category')
    FROM support_tickets t
    WHERE a.subject_kind = 'ticket'
      AND t.id = CASE WHEN a.subject_kind = 'ticket' THEN a.subject_id::bigint END
    UNION ALL
    SELECT format('customer %s (segment %s): churn risk %s', c.id, coalesce(c.segment, '-'),
                  coalesce(c.churn_risk_score::text, '-')),
           jsonb_build_object('churn_risk_score', c.churn_risk_score)
    FROM customers c
    WHERE a.subject_kind = 'churn'
      AND c.id = CASE WHEN a.subject_kind = 'churn' THEN a.subject_id::bigint END
    UNION ALL
    SELECT format('segment %s (%s customers)', g.segment_name, coalesce(g.customer_count, 0)),
           '{}'::jsonb
    FROM customer_segments_analysis g
    WHERE a.subject_kind = 'segment' AND g.segment_name = a.subject_id
) s
WHERE a.needs_human_review
  AND NOT EXISTS (
      SELECT 1 FROM steadytext_human_verdicts v
      WHERE v.subject_kind = a.subject_kind AND v.subject_id = a.subject_id
        AND v.decided_at >= a.changed_at)
ORDER BY a.changed_at, a.subject_kind, a.subject_id;
