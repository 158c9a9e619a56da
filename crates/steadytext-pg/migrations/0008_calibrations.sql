-- Sentiment calibrations: the feedback loop's learned state (issue 14).
--
-- `steadytext calibrate sentiment --database-url URL` fits a calibration on the human verdicts
-- stored here (steadytext_human_verdicts, field review.sentiment), and — when it
-- cross-validates at least as well as the active one on the same verdicts — stores it here
-- and makes it the active one. Every worker reads the active calibration before each review
-- analysis (one indexed lookup) and switches to a new one without a restart; a worker started
-- with `--calibration FILE` keeps its file's instead. No active row: the built-in default.
--
-- `id` is the calibration's identity (`cal-` and 16 hex digits of a hash of `body`), which every
-- analysis records (steadytext_analyses.calibration_id; ReviewAnalysis.calibration), so
-- results of one calibration never pass for another's.

CREATE TABLE IF NOT EXISTS steadytext_calibrations (
    id TEXT PRIMARY KEY CHECK (id ~ '^cal-[0-9a-f]{16}$'),
    task TEXT NOT NULL DEFAULT 'sentiment' CHECK (task IN ('sentiment')),
    -- The calibration document (steadytext_schema::sentiment_model::Calibration as JSON).
    body JSONB NOT NULL,
    fitted_on TEXT NOT NULL,
    examples INTEGER NOT NULL CHECK (examples >= 0),
    cv_accuracy DOUBLE PRECISION,
    cv_macro_f1 DOUBLE PRECISION,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    activated_at TIMESTAMPTZ,
    active BOOLEAN NOT NULL DEFAULT false
);

-- At most one active calibration per task.
CREATE UNIQUE INDEX IF NOT EXISTS steadytext_calibrations_active
    ON steadytext_calibrations (task) WHERE active;
