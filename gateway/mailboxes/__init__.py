"""EWS and Graph clients and their errors, shared by intake and outgoing."""
