//! AF_XDP: the sockets and their UMEM (`port`), the steering program that picks which frames
//! reach them (`steer`), and the worker loop that feeds batches through the pipeline
//! (`worker`). With `mem/`, the only module with `unsafe`; each block says why it is sound.

pub mod port;
pub mod socket_stats;
pub mod steer;
pub mod worker;
