-- The customer-intelligence schema, column for column as in the seed tutorial
-- (customer-intelligence-tutorial.md, "Database Schema"), so the seed's own queries run unchanged.
-- `IF NOT EXISTS` lets a database that already holds the seed's tables adopt these migrations.
-- gen_random_uuid() is built into PostgreSQL 13+ (no pgcrypto needed).

-- Customers table
CREATE TABLE IF NOT EXISTS customers (
    id SERIAL PRIMARY KEY,
    customer_id UUID DEFAULT gen_random_uuid(),
    email VARCHAR(255) UNIQUE NOT NULL,
    first_name VARCHAR(100),
    last_name VARCHAR(100),
    segment VARCHAR(50),
    lifetime_value DECIMAL(10, 2) DEFAULT 0,
    acquisition_date DATE,
    last_active_date DATE,
    churn_risk_score DECIMAL(3, 2),
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- Customer interactions
CREATE TABLE IF NOT EXISTS customer_interactions (
    id SERIAL PRIMARY KEY,
    customer_id INTEGER REFERENCES customers(id),
    interaction_type VARCHAR(50), -- 'support', 'purchase', 'review', 'email', 'chat'
    channel VARCHAR(50), -- 'web', 'mobile', 'email', 'phone'
    content TEXT,
    metadata JSONB,
    sentiment_score DECIMAL(3, 2), -- -1 to 1
    timestamp TIMESTAMPTZ DEFAULT NOW()
);

-- Product reviews
CREATE TABLE IF NOT EXISTS product_reviews (
    id SERIAL PRIMARY KEY,
    customer_id INTEGER REFERENCES customers(id),
    product_id INTEGER,
    rating INTEGER CHECK (rating >= 1 AND rating <= 5),
    title VARCHAR(200),
    review_text TEXT,
    verified_purchase BOOLEAN DEFAULT FALSE,
    helpful_count INTEGER DEFAULT 0,
    ai_summary TEXT,
    sentiment VARCHAR(20),
    key_themes TEXT[],
    created_at TIMESTAMPTZ DEFAULT NOW()
);

-- Support tickets
CREATE TABLE IF NOT EXISTS support_tickets (
    id SERIAL PRIMARY KEY,
    ticket_number VARCHAR(20) UNIQUE,
    customer_id INTEGER REFERENCES customers(id),
    category VARCHAR(50),
    priority VARCHAR(20),
    subject VARCHAR(200),
    description TEXT,
    resolution TEXT,
    satisfaction_score INTEGER,
    ai_analysis JSONB,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    resolved_at TIMESTAMPTZ
);

-- Customer segments with AI insights
CREATE TABLE IF NOT EXISTS customer_segments_analysis (
    id SERIAL PRIMARY KEY,
    segment_name VARCHAR(50) UNIQUE,
    customer_count INTEGER,
    avg_lifetime_value DECIMAL(10, 2),
    common_behaviors TEXT[],
    ai_profile TEXT,
    recommendations JSONB,
    last_updated TIMESTAMPTZ DEFAULT NOW()
);

-- Indexes for performance
CREATE INDEX IF NOT EXISTS idx_interactions_customer ON customer_interactions(customer_id, timestamp);
CREATE INDEX IF NOT EXISTS idx_reviews_customer ON product_reviews(customer_id);
CREATE INDEX IF NOT EXISTS idx_reviews_sentiment ON product_reviews(sentiment);
CREATE INDEX IF NOT EXISTS idx_tickets_customer ON support_tickets(customer_id);
CREATE INDEX IF NOT EXISTS idx_customers_segment ON customers(segment);
CREATE INDEX IF NOT EXISTS idx_customers_churn ON customers(churn_risk_score);
