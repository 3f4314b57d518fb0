fn _y() {}
