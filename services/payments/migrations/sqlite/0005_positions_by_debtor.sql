-- A debtor's positions, newest first (ListDebtPositions for a citizen, or filtered).
CREATE INDEX payments_debt_positions_by_debtor
    ON payments_debt_positions (comune, debtor_fiscal_code, create_time, id);
