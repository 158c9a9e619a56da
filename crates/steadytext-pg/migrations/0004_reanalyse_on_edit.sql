-- Re-analyse on every edit of what an analysis reads.
--
-- A review's analysis reads its title, text and rating (all three are in the prompts) and
-- writes its customer and product into the logged interaction; a ticket's reads its category,
-- subject and description and writes its customer into the interaction. Changing any of these
-- enqueues a new analysis (only when a value actually changed). The analysis write is guarded
-- by the same columns: a job that read an older version finishes without writing, and the job
-- this trigger enqueued does the work on the current version.
--
-- 0002 enqueued on review text and rating changes only, and never on ticket edits.

DROP TRIGGER IF EXISTS steadytext_review_changed ON product_reviews;
CREATE TRIGGER steadytext_review_changed
    AFTER UPDATE OF customer_id, product_id, rating, title, review_text ON product_reviews
    FOR EACH ROW
    WHEN (OLD.customer_id IS DISTINCT FROM NEW.customer_id
          OR OLD.product_id IS DISTINCT FROM NEW.product_id
          OR OLD.rating IS DISTINCT FROM NEW.rating
          OR OLD.title IS DISTINCT FROM NEW.title
          OR OLD.review_text IS DISTINCT FROM NEW.review_text)
    EXECUTE FUNCTION steadytext_enqueue_review_analysis();

DROP TRIGGER IF EXISTS steadytext_ticket_changed ON support_tickets;
CREATE TRIGGER steadytext_ticket_changed
    AFTER UPDATE OF customer_id, category, subject, description ON support_tickets
    FOR EACH ROW
    WHEN (OLD.customer_id IS DISTINCT FROM NEW.customer_id
          OR OLD.category IS DISTINCT FROM NEW.category
          OR OLD.subject IS DISTINCT FROM NEW.subject
          OR OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION steadytext_enqueue_ticket_analysis();
