-- Review aspects and the database's own feedback taxonomy.
--
-- A review's themes are phrases quoted from it; each is filed under a taxonomy category with
-- the customer's polarity about it. `review_aspects` stores them as a JSON array of
-- {"phrase", "category", "polarity", "categorised_by"} (key_themes keeps the phrases, as the
-- seed), so dashboards and segments aggregate by category, not by free strings.
--
-- `steadytext_taxonomy` is the category set analyses use, editable as data: rows in
-- `position` order; `keywords` are the word stems of each category's rule. An empty table
-- is seeded with the built-in default when migrations run (`Store::migrate`).

ALTER TABLE product_reviews ADD COLUMN IF NOT EXISTS review_aspects JSONB
    CHECK (review_aspects IS NULL OR jsonb_typeof(review_aspects) = 'array');

CREATE TABLE IF NOT EXISTS steadytext_taxonomy (
    key TEXT PRIMARY KEY CHECK (btrim(key) <> ''),
    label TEXT NOT NULL CHECK (btrim(label) <> ''),
    keywords TEXT[] NOT NULL DEFAULT '{}',
    position INTEGER NOT NULL UNIQUE
);
CREATE UNIQUE INDEX IF NOT EXISTS steadytext_taxonomy_label ON steadytext_taxonomy (lower(label));

-- Per category: how many review aspects are positive, neutral and negative.
CREATE OR REPLACE VIEW steadytext_review_topics AS
SELECT a->>'category' AS category,
       count(*) FILTER (WHERE a->>'polarity' = 'positive') AS positive,
       count(*) FILTER (WHERE a->>'polarity' = 'neutral') AS neutral,
       count(*) FILTER (WHERE a->>'polarity' = 'negative') AS negative,
       count(*) AS mentions
FROM product_reviews r, jsonb_array_elements(r.review_aspects) AS a
GROUP BY 1;
