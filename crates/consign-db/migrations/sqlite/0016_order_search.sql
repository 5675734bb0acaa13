-- The order list's search finds orders by a line's SKU and by a
-- shipment's tracking number, each through its own index.
CREATE INDEX order_items_sku ON order_items (sku, order_id);
CREATE INDEX shipments_tracking_number ON shipments (tracking_number, order_id);
