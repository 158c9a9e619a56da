-- The resolution playbook: what support does about a ticket, as data users edit.
--
-- A ticket analysis picks its suggested resolution here (steadytext_schema::playbook): among
-- the rows of the ticket's taxonomy category, in `position` order, the first whose
-- `cause_keywords` occur in the quoted root cause, else the first whose keywords occur in the
-- ticket's subject or description, else the category's default row (no keywords), else the
-- default row of category 'other' (the catch-all, which must exist). Keywords are word stems,
-- matched case- and accent-insensitively.
--
-- Seeded with the defaults the library ships (defaults/resolution_playbook.json; a test keeps
-- the two equal). Edit, add or delete rows freely; analyses read the table each time.

CREATE SCHEMA IF NOT EXISTS steadytext;

CREATE TABLE IF NOT EXISTS steadytext.resolution_playbook (
    id SERIAL PRIMARY KEY,
    position INTEGER NOT NULL,
    category TEXT NOT NULL CHECK (btrim(category) <> ''),
    cause_keywords TEXT[] NOT NULL DEFAULT '{}',
    resolution TEXT NOT NULL CHECK (btrim(resolution) <> ''),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS resolution_playbook_order
    ON steadytext.resolution_playbook (position, id);

INSERT INTO steadytext.resolution_playbook (position, category, cause_keywords, resolution)
SELECT * FROM (VALUES
    (10, 'defects_durability', ARRAY['won''t turn on', 'wont turn on', 'stopped working', 'not working', 'dead', 'died', 'won''t charge', 'wont charge']::text[],
     'Send a replacement unit by express at no charge with a prepaid return label for the faulty one, and log the defect against the product''s batch.'),
    (20, 'defects_durability', ARRAY['broke', 'broken', 'cracked', 'fell apart', 'torn', 'ripped', 'leak']::text[],
     'Ask for a photo of the damage, then send a free replacement or a full refund (customer''s choice) and log the failure for the quality team.'),
    (30, 'defects_durability', '{}'::text[],
     'Send a replacement under warranty at no charge, with a prepaid return label for the defective item.'),
    (40, 'shipping_delivery', ARRAY['no updates', 'no update', 'lost', 'never arrived', 'never received', 'not delivered', 'hasn''t been delivered', 'hasnt been delivered', 'tracking']::text[],
     'Open a trace with the carrier; if the parcel has not moved in 48 hours, re-ship the order by express at no charge and send the new tracking number.'),
    (50, 'shipping_delivery', ARRAY['wrong address', 'wrong item', 'wrong order']::text[],
     'Ship the correct item to the confirmed address by express at no charge and send a prepaid label to return the wrong one.'),
    (60, 'shipping_delivery', '{}'::text[],
     'Check the carrier''s tracking, send the customer the current delivery estimate, and refund the shipping fee if the order arrives after the promised date.'),
    (70, 'packaging', ARRAY['damaged', 'crushed', 'broken', 'open']::text[],
     'Send a replacement in reinforced packaging at no charge and file a damage claim with the carrier.'),
    (80, 'packaging', '{}'::text[],
     'Forward the packaging complaint to the warehouse team and offer a replacement if the contents were affected.'),
    (90, 'returns_refunds', ARRAY['warranty']::text[],
     'Honour the warranty: approve the claim, send a prepaid return label and ship the replacement as soon as the return is scanned.'),
    (100, 'returns_refunds', ARRAY['refund', 'money back', 'not received', 'still waiting']::text[],
     'Check the refund''s status in the payment system; if it was not issued, issue it now and email the customer the confirmation with the expected bank date.'),
    (110, 'returns_refunds', '{}'::text[],
     'Approve the return, email a prepaid return label, and refund within 5 business days of receiving the item.'),
    (120, 'billing_payment', ARRAY['twice', 'two times', 'double', 'duplicate', 'again']::text[],
     'Refund the duplicate charge and confirm by email with the refund reference.'),
    (130, 'billing_payment', ARRAY['wrong', 'incorrect', 'overcharg', 'unauthori', 'fraud']::text[],
     'Compare the charge with the order total, refund the difference (or the whole charge if the customer did not authorise it) and confirm by email.'),
    (140, 'billing_payment', ARRAY['declined', 'failed', 'card']::text[],
     'Check the payment processor''s log for the decline reason, tell the customer what to change, and hold the order for 48 hours.'),
    (150, 'billing_payment', '{}'::text[],
     'Send the customer an itemised invoice for the order and correct any charge they dispute.'),
    (160, 'price_value', ARRAY['price drop', 'cheaper', 'lower price', 'price match']::text[],
     'Apply the price-match policy: refund the difference if the lower price is within 14 days of purchase.'),
    (170, 'price_value', '{}'::text[],
     'Explain what the price includes and, for a repeat customer, offer the current loyalty discount code.'),
    (180, 'customer_service', ARRAY['no response', 'no reply', 'never answered', 'waiting']::text[],
     'Have a senior agent reply within 4 business hours with an answer to the open question, and apologise for the wait.'),
    (190, 'customer_service', '{}'::text[],
     'Escalate to a team lead to review the conversation, reply to the customer with an apology and a named contact.'),
    (200, 'account_access', ARRAY['password', 'reset']::text[],
     'Send a password-reset link to the address on file, check that reset emails are not blocked, and confirm once the customer is back in.'),
    (210, 'account_access', ARRAY['locked', 'can''t log in', 'cannot log in', 'cant log in', 'unable to log in', 'login']::text[],
     'Verify the customer''s identity, unlock the account, send a password-reset link, and confirm once they can sign in.'),
    (220, 'account_access', '{}'::text[],
     'Verify the customer''s identity and restore access to the account, then confirm by email.'),
    (230, 'technical_issue', ARRAY['site is down', 'site down', 'outage', 'down', 'not loading', '500', '503']::text[],
     'Page the on-call engineer with the time and page affected, post a status-page update, and tell the customer when service is restored.'),
    (240, 'technical_issue', ARRAY['crash', 'error', 'bug']::text[],
     'Collect the steps, device and app version, reproduce the error, and file a bug with the engineering team; send the customer a workaround if one exists.'),
    (250, 'technical_issue', '{}'::text[],
     'Collect the device, browser or app version and the steps to reproduce, and route the ticket to technical support.'),
    (260, 'usability', ARRAY['instructions', 'setup', 'set up', 'assembl', 'install']::text[],
     'Send the step-by-step setup guide and offer a 15-minute guided call.'),
    (270, 'usability', '{}'::text[],
     'Send the relevant help-centre article and log the confusion for the product team.'),
    (280, 'size_fit', '{}'::text[],
     'Offer a free exchange for another size with a prepaid return label, and send the size chart.'),
    (290, 'product_quality', '{}'::text[],
     'Offer a replacement or a refund (customer''s choice) and log the quality complaint against the product.'),
    (300, 'other', '{}'::text[],
     'Route the ticket to a support agent to read and reply within one business day.')
) AS defaults (position, category, cause_keywords, resolution)
WHERE NOT EXISTS (SELECT 1 FROM steadytext.resolution_playbook);
