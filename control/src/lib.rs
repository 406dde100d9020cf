//! The egressgw control protocol, its Unix-socket server and clients. Filled in by the control
//! issue; present now so the workspace layout is the one ARCHITECTURE.md describes.
