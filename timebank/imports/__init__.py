"""Moving in: people and their history brought from a spreadsheet or another timebank's
system (our own CSV columns, or TimeOverflow's member and transfer lists), each file checked
whole and imported in one transaction or not at all."""
