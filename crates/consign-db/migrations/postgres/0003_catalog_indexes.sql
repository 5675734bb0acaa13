-- Indexes behind the catalog and inventory list filters that 0002 lacks:
-- the stock ledger listed by brand (the tenant scope of every ledger list)
-- and a SKU looked up across brands (a platform admin's levels filter).
CREATE INDEX stock_movements_brand ON stock_movements (brand_id, id);
CREATE INDEX variants_sku ON variants (sku);
