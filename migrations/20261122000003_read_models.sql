-- Read models. Each table belongs to exactly one projector, which is the
-- only writer; queries only read them.

-- projector "catalog": categories, shops, product listings, availability.
CREATE TABLE rm_categories
(
    id         uuid PRIMARY KEY,
    name       text    NOT NULL,
    parent_id  uuid,
    -- Ancestors and the category itself, root first.
    path       uuid[]  NOT NULL,
    position   bigint  NOT NULL
);
CREATE INDEX rm_categories_path ON rm_categories USING gin (path);
CREATE INDEX rm_categories_parent ON rm_categories (parent_id);
CREATE INDEX rm_categories_name ON rm_categories (lower(name));

CREATE TABLE rm_shops
(
    id          uuid PRIMARY KEY,
    name        text   NOT NULL,
    description text,
    address     text,
    position    bigint NOT NULL
);
CREATE INDEX rm_shops_name ON rm_shops (lower(name), id);

CREATE TABLE rm_products
(
    id            uuid PRIMARY KEY,
    name          text    NOT NULL,
    description   text    NOT NULL,
    price         bigint  NOT NULL,
    currency      text    NOT NULL,
    sku           text    NOT NULL,
    image_url     text,
    category_id   uuid    NOT NULL,
    shop_id       uuid,
    discontinued  boolean NOT NULL DEFAULT false,
    -- Position of the creating event: "newest" sorts by it.
    created_position bigint NOT NULL,
    search        tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A') ||
        setweight(to_tsvector('english', description), 'B')) STORED
);
CREATE INDEX rm_products_search ON rm_products USING gin (search);
CREATE INDEX rm_products_name ON rm_products (name, id) WHERE NOT discontinued;
CREATE INDEX rm_products_price ON rm_products (price, id) WHERE NOT discontinued;
CREATE INDEX rm_products_newest ON rm_products (created_position DESC) WHERE NOT discontinued;
CREATE INDEX rm_products_category ON rm_products (category_id) WHERE NOT discontinued;
CREATE INDEX rm_products_shop ON rm_products (shop_id) WHERE NOT discontinued;

CREATE TABLE rm_availability
(
    product_id uuid PRIMARY KEY,
    on_hand    bigint NOT NULL,
    held       bigint NOT NULL,
    available  bigint GENERATED ALWAYS AS (on_hand - held) STORED
);

-- projector "orders": order history.
CREATE TABLE rm_orders
(
    id                  uuid PRIMARY KEY,
    customer_id         uuid        NOT NULL,
    status              text        NOT NULL,
    payment_status      text        NOT NULL,
    cancellation_reason text,
    total               bigint      NOT NULL,
    currency            text        NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    placed_position     bigint      NOT NULL,
    -- The order as the API shows it.
    view                jsonb       NOT NULL,
    -- The folded aggregate state the next event is applied to.
    state               jsonb       NOT NULL,
    last_sequence       bigint      NOT NULL
);
CREATE INDEX rm_orders_customer ON rm_orders (customer_id, placed_position DESC);
CREATE INDEX rm_orders_status ON rm_orders (status, placed_position DESC);
CREATE INDEX rm_orders_newest ON rm_orders (placed_position DESC);
