"""The accounting step: acquired series → the month's emissions → the spec's MonthlyReport."""
