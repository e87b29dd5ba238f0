"""zsvl.data"""
