//! BGP-4 speaker and BFD for egressgw. Filled in by the BGP issue; the workspace builds it now so
//! the dependency direction (gateway -> bgp, never back) is fixed from the start.
