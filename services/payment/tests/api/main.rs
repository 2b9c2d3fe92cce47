mod charges;
mod helpers;
