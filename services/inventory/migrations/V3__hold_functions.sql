-- A hold and a commit as one statement each (docs/performance.md): the same steps as the
-- statements they replace (lock the reservation, find what happened before, count the user's
-- units, write the hold rows, move the stock last), in one round trip instead of six to eight.
-- Every hold and commit of a flash sale goes through here. Every function is PL/pgSQL, whose
-- statements' plans are cached per connection: a SQL-language function that cannot be
-- inlined is parsed and planned again on every call (measured: 15 % of PostgreSQL's CPU at
-- 500 VUs when hold_state() was one).

-- The foreign key made every hold row insert lock the product's stock row FOR KEY SHARE: on
-- the hottest row of the sale, every concurrent hold joined a multixact that each stock
-- update then had to carry. Stock rows are never deleted and hold_stock() checks that the
-- product exists in the same transaction, so the key held nothing the code does not.
ALTER TABLE holds DROP CONSTRAINT holds_product_id_fkey;

-- State of a reservation's holds as a whole: the holds' own state, RELEASED for a tombstone,
-- NULL when neither exists. Hold, commit and release all start from it.
CREATE FUNCTION hold_state(p_reservation UUID) RETURNS TEXT
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
        SELECT state FROM (
            SELECT state, 0 AS rank FROM holds WHERE reservation_id = p_reservation
            UNION ALL
            SELECT 'RELEASED', 1 FROM released_reservations WHERE reservation_id = p_reservation
        ) AS known
        ORDER BY rank LIMIT 1
    );
END
$$;

-- Hold p_quantities[i] of p_products[i] for reservation p_reservation of p_user, all or
-- nothing. The products come in product order (a fixed lock order rules out deadlocks), each
-- once. Outcomes:
--   HELD / SOLD / RELEASED: the reservation's holds already existed (or a tombstone did);
--     nothing written;
--   UNKNOWN_PRODUCT (with the product), LIMIT_REACHED, SOLD_OUT: rejected before any write;
--   HELD with new rows: held now.
-- A limit or the stock lost to a concurrent hold between the checks and the writes raises
-- FS002 (limit reached) or FS001 (sold out), so the statement's writes roll back with it.
CREATE FUNCTION hold_stock(
    p_reservation UUID,
    p_user UUID,
    p_products UUID[],
    p_quantities INTEGER[],
    OUT outcome TEXT,
    OUT product UUID
)
LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := coalesce(array_length(p_products, 1), 0);
    v_limit INTEGER;
    v_limits INTEGER[] := '{}';
    v_available INTEGER;
    v_units INTEGER;
    v_short BOOLEAN := false;
BEGIN
    IF n = 0 OR n <> coalesce(array_length(p_quantities, 1), 0) THEN
        RAISE EXCEPTION 'hold_stock: % products for % quantities', n, array_length(p_quantities, 1);
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(p_reservation::text, 0));
    outcome := hold_state(p_reservation);
    IF outcome IS NOT NULL THEN
        RETURN;
    END IF;

    -- Checks before any write, one read per product, in the order the answers rank: an
    -- unknown product, then a limit, then the stock (a short product is answered only once
    -- no other product is unknown or over its limit). A sold-out product is the common
    -- answer of a flash sale, and it costs reads only.
    FOR i IN 1 .. n LOOP
        SELECT s.per_user_limit, s.available, coalesce(u.units, 0)
        INTO v_limit, v_available, v_units
        FROM stock s
        LEFT JOIN user_units u ON u.user_id = p_user AND u.product_id = s.product_id
        WHERE s.product_id = p_products[i];
        IF NOT FOUND THEN
            outcome := 'UNKNOWN_PRODUCT';
            product := p_products[i];
            RETURN;
        END IF;
        IF v_limit > 0 AND v_units + p_quantities[i] > v_limit THEN
            outcome := 'LIMIT_REACHED';
            RETURN;
        END IF;
        v_short := v_short OR v_available < p_quantities[i];
        v_limits := v_limits || v_limit;
    END LOOP;
    IF v_short THEN
        outcome := 'SOLD_OUT';
        RETURN;
    END IF;

    -- The writes. The guard in DO UPDATE makes the limit check and the increment one atomic
    -- step, even when the same user races itself from many connections.
    FOR i IN 1 .. n LOOP
        INSERT INTO user_units (user_id, product_id, units)
        VALUES (p_user, p_products[i], p_quantities[i])
        ON CONFLICT (user_id, product_id)
        DO UPDATE SET units = user_units.units + EXCLUDED.units
        WHERE v_limits[i] = 0 OR user_units.units + EXCLUDED.units <= v_limits[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'FS002', MESSAGE = 'limit_reached';
        END IF;
        INSERT INTO holds (reservation_id, product_id, user_id, quantity, state)
        VALUES (p_reservation, p_products[i], p_user, p_quantities[i], 'HELD');
    END LOOP;
    -- The hot rows last, so each is locked only for these statements and the commit.
    FOR i IN 1 .. n LOOP
        UPDATE stock SET available = available - p_quantities[i],
                         reserved = reserved + p_quantities[i]
        WHERE product_id = p_products[i] AND available >= p_quantities[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'FS001', MESSAGE = 'sold_out';
        END IF;
    END LOOP;
    outcome := 'HELD';
END
$$;

-- HELD → SOLD for every hold of the reservation. Outcomes: DONE (now or before), RELEASED
-- (the holds went the other way), UNKNOWN (no hold was ever placed).
CREATE FUNCTION commit_holds(p_reservation UUID) RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
    v_state TEXT;
    v_products UUID[];
    v_quantities INTEGER[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_reservation::text, 0));
    v_state := hold_state(p_reservation);
    IF v_state IS NULL THEN
        RETURN 'UNKNOWN';
    ELSIF v_state = 'SOLD' THEN
        RETURN 'DONE';
    ELSIF v_state = 'RELEASED' THEN
        RETURN 'RELEASED';
    END IF;
    WITH sold AS (
        UPDATE holds SET state = 'SOLD', updated_at = now()
        WHERE reservation_id = p_reservation AND state = 'HELD'
        RETURNING product_id, quantity
    )
    SELECT array_agg(product_id ORDER BY product_id), array_agg(quantity ORDER BY product_id)
    INTO v_products, v_quantities
    FROM sold;
    -- In product order, as every other writer of the stock rows.
    FOR i IN 1 .. coalesce(array_length(v_products, 1), 0) LOOP
        UPDATE stock SET reserved = reserved - v_quantities[i], sold = sold + v_quantities[i]
        WHERE product_id = v_products[i];
    END LOOP;
    RETURN 'DONE';
END
$$;
