"""vote: ballot intake. Validates against the frozen rules, keeps one counted ballot
per voter (revotes replace), stores durably and hands out receipts."""
