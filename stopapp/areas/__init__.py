"""Areas: named polygons (boroughs, police force areas) imported from GeoJSON."""
