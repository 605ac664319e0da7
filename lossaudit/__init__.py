"""lossaudit: property-based audits of YOLO-style detection losses, component by component."""
