-- The seed tutorial's SQL surface, computed by workers: its functions (calculate_churn_risk(),
-- analyze_customer_segments(), analyze_support_ticket(id), generate_customer_recommendations(id,
-- n)) and views (customer_sentiment_dashboard, executive_customer_summary), plus an async SQL
-- API in the style of pg_steadytext's (steadytext.steadytext_generate_async, ...).
--
-- No model runs inside a PostgreSQL backend. A seed function hands its model work to the
-- durable queue (steadytext_jobs) and waits for the workers (`steadytext worker`), which run
-- the same Rust code as the library and write the results here with `computed_at`:
--
--   psql session                       worker (steadytext worker)
--   calculate_churn_risk()
--     enqueue over dblink (commits at once, so a worker can see it even
--       when the caller is inside a transaction)
--     wait: poll the job, up to steadytext.wait_timeout seconds ---> claims, computes, writes
--     return the stored rows   <-------------------------------------- commits the job
--
-- Settings: a session's or role's or database's value (SET, ALTER ROLE/DATABASE ... SET
-- steadytext.NAME = ...) wins; else the row of steadytext.config (key NAME), which applies to
-- every session at once; else the default:
--   steadytext.wait_timeout     seconds a seed function waits for the workers (default 120)
--   steadytext.dblink_connstr   how the enqueue connects back to this database (default: this
--                               database, user and port over the server's first socket
--                               directory; a non-superuser needs a password in it)
--   steadytext.refresh_insights 'off' stops data changes from enqueueing the dashboard and
--                               executive refresh (default on)
--
-- The seed functions require READ COMMITTED (the default): each poll must see the workers'
-- commits. Rows the caller changed in its own open transaction are invisible to the workers
-- until it commits; call the functions in autocommit mode, or commit first.
--
-- Views never wait. The dashboard's ai_insights and the executive view's executive_insights are
-- the worker's latest `refresh_insights` results, with the facts they were computed from; any
-- change to customers, interactions, reviews or tickets enqueues a refresh (merged while
-- pending), so once the queue has drained every row has its insight.

CREATE SCHEMA IF NOT EXISTS steadytext;
CREATE EXTENSION IF NOT EXISTS dblink;

-- Settings -----------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS steadytext.config (
    key TEXT PRIMARY KEY CHECK (key IN ('wait_timeout', 'dblink_connstr', 'refresh_insights')),
    value TEXT NOT NULL
);

CREATE OR REPLACE FUNCTION steadytext.setting(p_name TEXT, p_default TEXT)
RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT COALESCE(NULLIF(current_setting('steadytext.' || p_name, true), ''),
                    (SELECT value FROM steadytext.config WHERE key = p_name),
                    p_default)
$$;

CREATE OR REPLACE FUNCTION steadytext.dblink_connstr()
RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT steadytext.setting('dblink_connstr',
        format('dbname=%s user=%s port=%s host=%s',
               quote_literal(current_database()),
               quote_literal(current_user),
               current_setting('port'),
               quote_literal(COALESCE(NULLIF(trim(split_part(
                   current_setting('unix_socket_directories'), ',', 1)), ''), '127.0.0.1'))))
$$;

CREATE OR REPLACE FUNCTION steadytext.wait_timeout()
RETURNS DOUBLE PRECISION LANGUAGE plpgsql STABLE AS $$
DECLARE
    v TEXT := steadytext.setting('wait_timeout', '120');
BEGIN
    RETURN v::double precision;
EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION 'steadytext.wait_timeout must be a number of seconds, not %', quote_literal(v)
        USING ERRCODE = 'invalid_parameter_value';
END;
$$;

-- Handing work to the workers ------------------------------------------------------------------

-- Enqueue in its own, committed transaction (over dblink), so a worker sees the job even while
-- the caller's transaction is open. Returns the job's id (an equal pending job is merged).
CREATE OR REPLACE FUNCTION steadytext.enqueue_committed(p_kind TEXT, p_payload JSONB,
                                                        p_dedupe_key TEXT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    v_id BIGINT;
BEGIN
    SELECT t.job_id INTO v_id
    FROM dblink(steadytext.dblink_connstr(),
                format('SELECT job_id FROM steadytext_enqueue_job(%L, %L::jsonb, %L)',
                       p_kind, p_payload::text, p_dedupe_key)) AS t(job_id BIGINT);
    RETURN v_id;
END;
$$;

-- Wait until job p_job_id is done. Raises when it was dead-lettered (with its error), and after
-- steadytext.wait_timeout seconds (saying whether any worker took it).
CREATE OR REPLACE FUNCTION steadytext.await_job(p_job_id BIGINT, p_what TEXT)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    v_timeout DOUBLE PRECISION := steadytext.wait_timeout();
    v_deadline TIMESTAMPTZ := clock_timestamp() + make_interval(secs => v_timeout);
    v_job RECORD;
    v_error TEXT;
    v_nap DOUBLE PRECISION := 0.01;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION '% waits for the steadytext workers and needs READ COMMITTED isolation, not %',
            p_what, current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    LOOP
        -- READ COMMITTED: every statement sees what the workers have committed so far.
        SELECT state, attempts, leased_by, last_error INTO v_job
        FROM steadytext_jobs WHERE id = p_job_id;
        IF NOT FOUND THEN
            SELECT last_error INTO v_error FROM steadytext_dead_jobs WHERE id = p_job_id;
            IF FOUND THEN
                RAISE EXCEPTION '% failed: %', p_what, v_error
                    USING ERRCODE = 'external_routine_exception',
                          HINT = format('job %s is in steadytext_dead_jobs', p_job_id);
            END IF;
            RAISE EXCEPTION '% lost its job %: it was removed before it finished', p_what, p_job_id
                USING ERRCODE = 'external_routine_exception';
        END IF;
        IF v_job.state = 'done' THEN
            RETURN;
        END IF;
        IF clock_timestamp() >= v_deadline THEN
            IF v_job.state = 'pending' AND v_job.attempts = 0 THEN
                RAISE EXCEPTION '% timed out after % s: no steadytext worker took job %',
                        p_what, v_timeout, p_job_id
                    USING ERRCODE = 'query_canceled',
                          HINT = 'Start a worker on this database: steadytext worker --database-url '
                                 || format('postgres://%s@%s:%s/%s', current_user,
                                           COALESCE(host(inet_server_addr()), 'localhost'),
                                           current_setting('port'), current_database())
                                 || ' (or raise SET steadytext.wait_timeout). The job stays queued.';
            END IF;
            RAISE EXCEPTION '% timed out after % s: job % is % (attempt %, worker %, last error %)',
                    p_what, v_timeout, p_job_id, v_job.state, v_job.attempts,
                    COALESCE(v_job.leased_by, 'none'), COALESCE(v_job.last_error, 'none')
                USING ERRCODE = 'query_canceled',
                      HINT = 'The job stays queued; raise SET steadytext.wait_timeout to wait longer.';
        END IF;
        PERFORM pg_sleep(LEAST(v_nap, GREATEST(0, extract(epoch FROM v_deadline - clock_timestamp()))));
        v_nap := LEAST(v_nap * 2, 0.25);
    END LOOP;
END;
$$;

-- Results the workers write --------------------------------------------------------------------

-- calculate_churn_risk(): the reportable customers of the latest run, in the run's order.
CREATE TABLE IF NOT EXISTS steadytext.churn_reports (
    customer_id INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    risk_score DECIMAL(3, 2) NOT NULL,
    risk_factors JSONB NOT NULL,
    retention_strategy TEXT NOT NULL,
    grounding TEXT NOT NULL,
    actions JSONB NOT NULL DEFAULT '[]'::jsonb,
    prompt_version TEXT NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- generate_customer_recommendations(id, n): every recommendation of the latest run per
-- customer, ranked; a call returns the first n.
CREATE TABLE IF NOT EXISTS steadytext.customer_recommendations (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    recommendation_type VARCHAR(50) NOT NULL,
    title VARCHAR(255) NOT NULL,
    description TEXT NOT NULL,
    priority INTEGER NOT NULL,
    product_id INTEGER,
    play TEXT,
    prompt_version TEXT NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, position)
);

-- customer_sentiment_dashboard: each customer's facts as of computed_at and the insight stated
-- from them.
CREATE TABLE IF NOT EXISTS steadytext.customer_insights (
    customer_id INTEGER PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    avg_sentiment DOUBLE PRECISION,
    interaction_count BIGINT NOT NULL,
    last_interaction TIMESTAMPTZ,
    interaction_types TEXT[] NOT NULL,
    issue_count BIGINT NOT NULL,
    avg_satisfaction DOUBLE PRECISION,
    customer_status TEXT NOT NULL,
    ai_insights TEXT NOT NULL,
    grounding TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- executive_customer_summary: the one company-wide row.
CREATE TABLE IF NOT EXISTS steadytext.executive_summary (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    total_customers BIGINT NOT NULL,
    high_risk_customers BIGINT NOT NULL,
    avg_ltv DOUBLE PRECISION,
    total_reviews BIGINT NOT NULL,
    avg_rating DOUBLE PRECISION,
    open_tickets BIGINT NOT NULL,
    executive_insights TEXT NOT NULL,
    actions JSONB NOT NULL DEFAULT '[]'::jsonb,
    grounding TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The seed's views: read what the workers stored, never wait ---------------------------------

-- Every customer (the seed's WHERE dropped those without recent interactions), with the facts
-- and insight of the latest refresh (NULL until the first one).
CREATE OR REPLACE VIEW customer_sentiment_dashboard AS
SELECT c.id,
       c.email,
       c.segment,
       i.avg_sentiment,
       i.interaction_count,
       i.last_interaction,
       i.interaction_types,
       i.issue_count,
       i.avg_satisfaction,
       i.customer_status,
       i.ai_insights,
       i.grounding AS insights_grounding,
       i.computed_at AS insights_computed_at
FROM customers c
LEFT JOIN steadytext.customer_insights i ON i.customer_id = c.id;

-- One row: the latest refresh's numbers and summary (NULLs until the first one).
CREATE OR REPLACE VIEW executive_customer_summary AS
SELECT s.total_customers,
       s.high_risk_customers,
       s.avg_ltv,
       s.total_reviews,
       s.avg_rating,
       s.open_tickets,
       s.executive_insights,
       ARRAY(SELECT a->>'action' FROM jsonb_array_elements(s.actions) a) AS executive_actions,
       s.grounding AS insights_grounding,
       s.computed_at AS insights_computed_at
FROM (SELECT TRUE AS id) one
LEFT JOIN steadytext.executive_summary s ON s.id = one.id;

-- Data changes enqueue the refresh of the views' insights (one pending job, merged).
CREATE OR REPLACE FUNCTION steadytext.enqueue_insights_refresh()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF steadytext.setting('refresh_insights', 'on') <> 'off' THEN
        PERFORM steadytext_enqueue_job('refresh_insights', '{}'::jsonb, 'all');
    END IF;
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'customer_interactions', 'product_reviews',
                             'support_tickets'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS steadytext_insights_stale ON %I', t);
        EXECUTE format('CREATE TRIGGER steadytext_insights_stale '
                       'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION steadytext.enqueue_insights_refresh()', t);
    END LOOP;
END;
$$;

-- The seed's functions: enqueue, wait for the workers, return what they stored ---------------

CREATE OR REPLACE FUNCTION calculate_churn_risk()
RETURNS TABLE (
    customer_id INTEGER,
    risk_score DECIMAL(3, 2),
    risk_factors JSONB,
    retention_strategy TEXT,
    grounding TEXT,
    computed_at TIMESTAMPTZ
) LANGUAGE plpgsql AS $$
DECLARE
    v_job BIGINT;
BEGIN
    v_job := steadytext.enqueue_committed('calculate_churn_risk', '{}'::jsonb, 'all');
    PERFORM steadytext.await_job(v_job, 'calculate_churn_risk()');
    RETURN QUERY
        SELECT r.customer_id, r.risk_score, r.risk_factors, r.retention_strategy, r.grounding,
               r.computed_at
        FROM steadytext.churn_reports r ORDER BY r.position;
END;
$$;

CREATE OR REPLACE FUNCTION analyze_customer_segments()
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    v_job BIGINT;
BEGIN
    v_job := steadytext.enqueue_committed('analyze_customer_segments', '{}'::jsonb, 'all');
    PERFORM steadytext.await_job(v_job, 'analyze_customer_segments()');
END;
$$;

CREATE OR REPLACE FUNCTION analyze_support_ticket(p_ticket_id INTEGER)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    v_job BIGINT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM support_tickets WHERE id = p_ticket_id) THEN
        RAISE EXCEPTION 'support ticket % not found', p_ticket_id
            USING ERRCODE = 'no_data_found';
    END IF;
    v_job := steadytext.enqueue_committed('analyze_ticket', jsonb_build_object('id', p_ticket_id),
                                          p_ticket_id::text);
    PERFORM steadytext.await_job(v_job, format('analyze_support_ticket(%s)', p_ticket_id));
END;
$$;

CREATE OR REPLACE FUNCTION generate_customer_recommendations(
    p_customer_id INTEGER,
    p_num_recommendations INTEGER DEFAULT 5
)
RETURNS TABLE (
    recommendation_type VARCHAR,
    title VARCHAR,
    description TEXT,
    priority INTEGER,
    product_id INTEGER,
    computed_at TIMESTAMPTZ
) LANGUAGE plpgsql AS $$
DECLARE
    v_job BIGINT;
BEGIN
    IF p_num_recommendations IS NULL OR p_num_recommendations < 0 THEN
        RAISE EXCEPTION 'p_num_recommendations must be 0 or more, not %', p_num_recommendations
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = p_customer_id) THEN
        RAISE EXCEPTION 'customer % not found', p_customer_id USING ERRCODE = 'no_data_found';
    END IF;
    v_job := steadytext.enqueue_committed('customer_recommendations',
                                          jsonb_build_object('customer_id', p_customer_id),
                                          p_customer_id::text);
    PERFORM steadytext.await_job(v_job,
        format('generate_customer_recommendations(%s, %s)', p_customer_id, p_num_recommendations));
    RETURN QUERY
        SELECT r.recommendation_type, r.title, r.description, r.priority, r.product_id,
               r.computed_at
        FROM steadytext.customer_recommendations r
        WHERE r.customer_id = p_customer_id
        ORDER BY r.position
        LIMIT p_num_recommendations;
END;
$$;

-- The async SQL API (pg_steadytext's names, in schema steadytext) -----------------------------

CREATE TABLE IF NOT EXISTS steadytext.async_requests (
    request_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    request_type TEXT NOT NULL
        CHECK (request_type IN ('generate', 'generate_json', 'generate_choice', 'generate_regex')),
    params JSONB NOT NULL,
    job_id BIGINT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'completed', 'failed', 'cancelled')),
    result TEXT,
    error TEXT,
    cached BOOLEAN,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS async_requests_job ON steadytext.async_requests (job_id);

-- Queue one request in the caller's transaction (it runs once that commits).
CREATE OR REPLACE FUNCTION steadytext.enqueue_async(p_type TEXT, p_params JSONB)
RETURNS UUID LANGUAGE plpgsql AS $$
DECLARE
    v_id UUID;
    v_job BIGINT;
BEGIN
    IF p_params->>'prompt' IS NULL OR btrim(p_params->>'prompt') = '' THEN
        RAISE EXCEPTION '%: the prompt is empty', p_type USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (p_params->>'max_tokens')::int < 1 THEN
        RAISE EXCEPTION '%: max_tokens must be at least 1, not %', p_type, p_params->>'max_tokens'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (p_params->>'seed')::bigint < 0 THEN
        RAISE EXCEPTION '%: seed must be 0 or more, not %', p_type, p_params->>'seed'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO steadytext.async_requests (request_type, params)
    VALUES (p_type, p_params) RETURNING request_id INTO v_id;
    SELECT job_id INTO v_job
    FROM steadytext_enqueue_job(p_type, jsonb_build_object('request_id', v_id), v_id::text);
    UPDATE steadytext.async_requests SET job_id = v_job WHERE request_id = v_id;
    RETURN v_id;
END;
$$;

CREATE OR REPLACE FUNCTION steadytext.steadytext_generate_async(
    prompt TEXT, max_tokens INTEGER DEFAULT 512, use_cache BOOLEAN DEFAULT TRUE,
    seed INTEGER DEFAULT 42)
RETURNS UUID LANGUAGE sql AS $$
    SELECT steadytext.enqueue_async('generate', jsonb_build_object(
        'prompt', prompt, 'max_tokens', max_tokens, 'use_cache', use_cache, 'seed', seed))
$$;

CREATE OR REPLACE FUNCTION steadytext.steadytext_generate_json_async(
    prompt TEXT, schema JSONB, max_tokens INTEGER DEFAULT 512, use_cache BOOLEAN DEFAULT TRUE,
    seed INTEGER DEFAULT 42)
RETURNS UUID LANGUAGE sql AS $$
    SELECT steadytext.enqueue_async('generate_json', jsonb_build_object(
        'prompt', prompt, 'schema', schema, 'max_tokens', max_tokens, 'use_cache', use_cache,
        'seed', seed))
$$;

CREATE OR REPLACE FUNCTION steadytext.steadytext_generate_regex_async(
    prompt TEXT, pattern TEXT, max_tokens INTEGER DEFAULT 512, use_cache BOOLEAN DEFAULT TRUE,
    seed INTEGER DEFAULT 42)
RETURNS UUID LANGUAGE sql AS $$
    SELECT steadytext.enqueue_async('generate_regex', jsonb_build_object(
        'prompt', prompt, 'pattern', pattern, 'max_tokens', max_tokens, 'use_cache', use_cache,
        'seed', seed))
$$;

CREATE OR REPLACE FUNCTION steadytext.steadytext_generate_choice_async(
    prompt TEXT, choices TEXT[], use_cache BOOLEAN DEFAULT TRUE, seed INTEGER DEFAULT 42)
RETURNS UUID LANGUAGE sql AS $$
    SELECT steadytext.enqueue_async('generate_choice', jsonb_build_object(
        'prompt', prompt, 'choices', to_jsonb(choices), 'use_cache', use_cache, 'seed', seed))
$$;

-- A request's state: pending (queued), processing (a worker holds it), completed, failed (the
-- error says why) or cancelled.
CREATE OR REPLACE FUNCTION steadytext.steadytext_check_async(p_request_id UUID)
RETURNS TABLE (
    status TEXT,
    result TEXT,
    error TEXT,
    cached BOOLEAN,
    created_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    processing_time_ms BIGINT
) LANGUAGE sql STABLE AS $$
    SELECT CASE
             WHEN r.status <> 'pending' THEN r.status
             WHEN d.id IS NOT NULL THEN 'failed'
             WHEN j.state = 'leased' THEN 'processing'
             ELSE 'pending'
           END,
           r.result,
           COALESCE(r.error, d.last_error),
           r.cached,
           r.created_at,
           COALESCE(r.completed_at, d.died_at),
           (extract(epoch FROM COALESCE(r.completed_at, d.died_at) - r.created_at) * 1000)::bigint
    FROM steadytext.async_requests r
    LEFT JOIN steadytext_jobs j ON j.id = r.job_id
    LEFT JOIN steadytext_dead_jobs d ON d.id = r.job_id
    WHERE r.request_id = p_request_id
$$;

-- Wait up to p_timeout_seconds for a request's result. Raises if it failed, was cancelled,
-- does not exist, was queued in this very transaction (no worker can see it before it
-- commits), or the time ran out.
CREATE OR REPLACE FUNCTION steadytext.steadytext_get_async_result(
    p_request_id UUID, p_timeout_seconds INTEGER DEFAULT 30)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    v_deadline TIMESTAMPTZ := clock_timestamp() + make_interval(secs => p_timeout_seconds);
    v RECORD;
    v_nap DOUBLE PRECISION := 0.01;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'steadytext_get_async_result needs READ COMMITTED isolation, not %',
            current_setting('transaction_isolation') USING ERRCODE = 'invalid_transaction_state';
    END IF;
    IF EXISTS (SELECT 1 FROM steadytext.async_requests r
               WHERE r.request_id = p_request_id
                 AND r.xmin = pg_current_xact_id_if_assigned()::xid) THEN
        RAISE EXCEPTION 'request % was queued in this transaction: commit it before waiting',
            p_request_id USING ERRCODE = 'invalid_transaction_state';
    END IF;
    LOOP
        SELECT * INTO v FROM steadytext.steadytext_check_async(p_request_id);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no async request %', p_request_id USING ERRCODE = 'no_data_found';
        END IF;
        CASE v.status
            WHEN 'completed' THEN RETURN v.result;
            WHEN 'failed' THEN
                RAISE EXCEPTION 'request % failed: %', p_request_id, v.error
                    USING ERRCODE = 'external_routine_exception';
            WHEN 'cancelled' THEN
                RAISE EXCEPTION 'request % was cancelled', p_request_id
                    USING ERRCODE = 'query_canceled';
            ELSE NULL;
        END CASE;
        IF clock_timestamp() >= v_deadline THEN
            RAISE EXCEPTION 'request % is still % after % s', p_request_id, v.status,
                    p_timeout_seconds
                USING ERRCODE = 'query_canceled',
                      HINT = CASE WHEN v.status = 'pending'
                                  THEN 'Is a worker running? steadytext worker --database-url ...'
                                  ELSE 'A worker is on it; wait longer.' END;
        END IF;
        PERFORM pg_sleep(LEAST(v_nap, GREATEST(0, extract(epoch FROM v_deadline - clock_timestamp()))));
        v_nap := LEAST(v_nap * 2, 0.25);
    END LOOP;
END;
$$;

-- Cancel a request that has not finished: true if it was pending or processing (a worker's
-- result for it is then discarded), false if it had already finished or does not exist.
CREATE OR REPLACE FUNCTION steadytext.steadytext_cancel_async(p_request_id UUID)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    v_job BIGINT;
BEGIN
    UPDATE steadytext.async_requests r
    SET status = 'cancelled', completed_at = now()
    WHERE r.request_id = p_request_id AND r.status = 'pending'
      AND NOT EXISTS (SELECT 1 FROM steadytext_dead_jobs d WHERE d.id = r.job_id)
    RETURNING r.job_id INTO v_job;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    DELETE FROM steadytext_jobs WHERE id = v_job AND state = 'pending';
    RETURN TRUE;
END;
$$;
