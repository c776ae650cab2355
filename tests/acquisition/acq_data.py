"""A metering point document for the acquisition tests."""

POINT_DOC = {"specVersion": "1.0", "pointId": "CEMS-CO2", "name": "CO2 (CEMS)", "measurand": "co2_concentration",
             "unit": "mg/m3", "hj212Code": "a05001",
             "instrument": {"instrumentId": "INS-CEMS", "type": "gas_analyzer", "model": "CEMS-2000", "serialNumber": "S1",
                            "accuracyClass": "2", "range": {"lower": "0", "upper": "300000", "unit": "mg/m3"},
                            "calibration": {"method": "calibration", "date": "2026-09-01", "dueDate": "2027-03-01",
                                            "certificateNumber": "C-1", "body": "station"}}}
